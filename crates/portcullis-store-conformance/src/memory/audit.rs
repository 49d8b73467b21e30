//! [`AuditStore`] for [`MemoryStore`]: the chain kept beside the rest of
//! the state, under the same lock, so a change and its event are one step.

use async_trait::async_trait;
use portcullis_domain::audit::{
    AuditAnchor, AuditContext, AuditEntry, AuditEvent, AuditKey, AuditQuery, AuditRecord,
    ChainPosition, SealedAuditEntry, SealedCheckpoint, SealedHead, chain_next, next_checkpoint,
};
use portcullis_domain::ports::AuditStore;
use portcullis_domain::{MAX_LISTING_PAGE_SIZE, Page, PageCursor, StoreError};
use time::OffsetDateTime;

use super::MemoryStore;

/// The stored chain: entries in `seq` order (a pruning removes a prefix)
/// and its two sealed ends.
#[derive(Debug, Default)]
pub(super) struct AuditLog {
    entries: Vec<SealedAuditEntry>,
    head: Option<SealedHead>,
    checkpoint: Option<SealedCheckpoint>,
}

impl AuditLog {
    /// Chains `record` after the head and makes it the head; its `seq`.
    /// The caller has read the key before changing anything, so nothing
    /// here can fail halfway through a change.
    pub(super) fn append(&mut self, key: &dyn AuditKey, record: &AuditRecord) -> u64 {
        let (sealed, head) = chain_next(key, self.head.as_ref(), record)
            .expect("the in-memory head is written only here, sealed");
        let seq = sealed.entry.seq;
        self.entries.push(sealed);
        self.head = Some(head);
        seq
    }

    /// The `seq` of the last event of the longest run from the start of
    /// the chain that is all before `before`; `None` when there is nothing
    /// to prune.
    fn prunable_through(&self, before: OffsetDateTime) -> Option<u64> {
        let head = self.head?.position.seq;
        let through = self
            .entries
            .iter()
            .find(|sealed| sealed.entry.at >= before)
            .map_or(head, |first_kept| first_kept.entry.seq - 1);
        let checkpoint = self
            .checkpoint
            .map_or(0, |checkpoint| checkpoint.position.seq);
        (through > checkpoint).then_some(through)
    }
}

/// Whether `entry` passes every filter of `query` (the page aside).
fn matches(entry: &AuditEntry, query: &AuditQuery) -> bool {
    query
        .user
        .is_none_or(|user| entry.subject_id == Some(user) || entry.actor_id == Some(user))
        && query
            .subject
            .is_none_or(|subject| entry.subject_id == Some(subject))
        && (query.events.is_empty() || query.events.contains(&entry.event))
        && query.since.is_none_or(|since| entry.at >= since)
        && query.until.is_none_or(|until| entry.at < until)
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit_event(&self, record: &AuditRecord) -> Result<u64, StoreError> {
        let key = self.audit_key()?;
        Ok(self.state().audit.append(&*key, record))
    }

    async fn list_audit_events(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        let before = query
            .page
            .after
            .as_ref()
            .map(PageCursor::audit_position)
            .transpose()?;
        let limit =
            usize::try_from(query.page.limit.clamp(1, MAX_LISTING_PAGE_SIZE)).unwrap_or(usize::MAX);
        let state = self.state();
        let mut items: Vec<AuditEntry> = state
            .audit
            .entries
            .iter()
            .rev()
            .filter(|sealed| before.is_none_or(|before| sealed.entry.seq < before))
            .filter(|sealed| matches(&sealed.entry, query))
            .take(limit + 1)
            .map(|sealed| sealed.entry.clone())
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        let next = items
            .last()
            .filter(|_| more)
            .map(|last| PageCursor::after_audit_event(last.seq));
        Ok(Page { items, next })
    }

    async fn audit_anchor(&self) -> Result<AuditAnchor, StoreError> {
        let state = self.state();
        Ok(AuditAnchor {
            head: state.audit.head,
            checkpoint: state.audit.checkpoint,
        })
    }

    async fn audit_chain_page(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<SealedAuditEntry>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .state()
            .audit
            .entries
            .iter()
            .filter(|sealed| sealed.entry.seq > after_seq)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn prune_audit_events(
        &self,
        before: OffsetDateTime,
        context: &AuditContext,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        let Some(through) = state.audit.prunable_through(before) else {
            return Ok(0);
        };
        let key = self.audit_key()?;
        let log = &mut state.audit;
        let mac = log
            .entries
            .iter()
            .find(|sealed| sealed.entry.seq == through)
            .map(|sealed| sealed.mac)
            .ok_or_else(|| {
                StoreError::Failed(format!(
                    "the audit event {through} to prune through is missing"
                ))
            })?;
        let stored = log.entries.len();
        log.entries.retain(|sealed| sealed.entry.seq > through);
        let count = u64::try_from(stored - log.entries.len()).unwrap_or(u64::MAX);
        log.checkpoint = Some(next_checkpoint(
            &*key,
            log.checkpoint.as_ref(),
            ChainPosition { seq: through, mac },
            count,
            context.at,
        )?);
        log.append(
            &*key,
            &context.record(
                None,
                AuditEvent::AuditPruned {
                    through_seq: through,
                    count,
                },
            ),
        );
        Ok(count)
    }
}
