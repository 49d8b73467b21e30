//! [`AuditStore`] for [`PostgresStore`], and the append that every change
//! makes as the last step of its transaction.
//!
//! One chain for the whole deployment, however many nodes write: the head
//! lives in the singleton row of `audit_chain`, and every append locks that
//! row (`SELECT … FOR UPDATE`) before it numbers and MACs its entries, so
//! appenders on every node take turns and each one chains to what the
//! previous one committed. The lock is the last one a transaction takes
//! (every other lock of the change is already held), so a transaction
//! holding the head never waits for anything but its own commit, and the
//! head cannot take part in a deadlock.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use portcullis_domain::audit::{
    AuditAnchor, AuditContext, AuditEntry, AuditEvent, AuditKey, AuditMac, AuditQuery, AuditRecord,
    ChainPosition, SealedAuditEntry, SealedCheckpoint, SealedHead, chain_next, next_checkpoint,
};
use portcullis_domain::ports::AuditStore;
use portcullis_domain::{MAX_LISTING_PAGE_SIZE, Page, PageCursor, StoreError, UserId};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::rows::{corrupt, optional_time, time, to_unix};
use crate::sql;
use crate::store::{OperationError, PostgresStore};

/// The columns of `audit_log`, in [`read_entry`]'s order.
pub(crate) const ENTRY_COLUMNS: &str =
    "seq, at, event, actor_id, subject_id, ip, user_agent, request_id, details, mac";

/// The columns of `audit_chain` that make an [`AuditAnchor`], in
/// [`read_anchor`]'s order.
const ANCHOR_COLUMNS: &str = "head_seq, head_mac, head_seal, \
                              checkpoint_seq, checkpoint_mac, checkpoint_at, checkpoint_seal";

/// How long a transaction waits for the head's lock before the server
/// gives up (55P03, answered as busy: 503 with `Retry-After`). Below the
/// operation deadline, so that a caller that gives up leaves no waiter
/// queued on the server behind it (which would make the queue longer the
/// more callers give up), and a queue of audited writes is answered as
/// busy instead of being taken for an unreachable database. `SET LOCAL`,
/// per transaction: a startup parameter or a session setting would not
/// survive a pooler in transaction mode.
const HEAD_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '2500ms'";

/// Locks the head row, reading the chain's ends.
const LOCK_HEAD: &str = "SELECT head_seq, head_mac, head_seal, \
                         checkpoint_seq, checkpoint_mac, checkpoint_at, checkpoint_seal \
                         FROM audit_chain WHERE id = 1 FOR UPDATE";

impl PostgresStore {
    /// Appends `records`, in order, to the chain: locks the head (the last
    /// lock of the transaction `client` is in), chains and inserts each
    /// record, and stores the new head. Returns the `seq` of the last one
    /// (the head's `seq` when `records` is empty, which appends and locks
    /// nothing).
    ///
    /// Without an audit key it fails with
    /// [`missing_key_error`](portcullis_domain::audit::missing_key_error)
    /// before touching the chain; the caller's transaction, not committed,
    /// rolls back with it.
    pub(crate) async fn append_audit(
        &self,
        client: &impl GenericClient,
        records: &[AuditRecord],
    ) -> Result<u64, OperationError> {
        let key = self.audit_key()?;
        if !key.records() {
            // A benchmark's baseline (see `AuditKey::records`).
            return Ok(0);
        }
        if records.is_empty() {
            // Nothing to chain: neither the head's lock nor, on an empty
            // chain, a head row without a head.
            return Ok(stored_anchor(client)
                .await?
                .head
                .map_or(0, |head| head.position.seq));
        }
        let anchor = lock_head(client, true).await?;
        append_after(client, &*key, anchor.head, records).await
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit_event(&self, record: &AuditRecord) -> Result<u64, StoreError> {
        self.run("append_audit_event", move |mut client| async move {
            let transaction = client.transaction().await?;
            let seq = self
                .append_audit(&transaction, std::slice::from_ref(record))
                .await?;
            transaction.commit().await?;
            Ok(seq)
        })
        .await
    }

    async fn list_audit_events(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        // The cursor holds the last `seq` shown; the next page is below it.
        let below = query
            .page
            .after
            .as_ref()
            .map(PageCursor::audit_position)
            .transpose()?
            .map(|seq| i64::try_from(seq).unwrap_or(i64::MAX));
        let user = query.user.map(|id| id.as_uuid());
        let subject = query.subject.map(|id| id.as_uuid());
        let events = &query.events;
        let since = query.since.map(to_unix);
        let until = query.until.map(to_unix);
        // The caller clamps; clamping again keeps a zero limit from making
        // an empty page that claims a next one.
        let limit = query.page.limit.clamp(1, MAX_LISTING_PAGE_SIZE);
        self.run("list_audit_events", move |client| async move {
            list_page(
                &client,
                below,
                ListFilter {
                    user,
                    subject,
                    events,
                    since,
                    until,
                },
                limit,
            )
            .await
        })
        .await
    }

    async fn audit_anchor(&self) -> Result<AuditAnchor, StoreError> {
        self.run("audit_anchor", |client| async move {
            stored_anchor(&client).await
        })
        .await
    }

    async fn audit_chain_page(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<SealedAuditEntry>, StoreError> {
        // No stored `seq` is above i64::MAX, so nothing follows such a
        // position.
        let Ok(after_seq) = i64::try_from(after_seq) else {
            return Ok(Vec::new());
        };
        let limit = i64::from(limit);
        self.run("audit_chain_page", move |client| async move {
            let rows = sql::query(
                &client,
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
                ),
                &[&after_seq, &limit],
            )
            .await?;
            rows.iter().map(read_entry).collect()
        })
        .await
    }

    async fn prune_audit_events(
        &self,
        before: OffsetDateTime,
        context: &AuditContext,
    ) -> Result<u64, StoreError> {
        let before_unix = to_unix(before);
        self.run("prune_audit_events", move |mut client| async move {
            let key = self.audit_key()?;
            let transaction = client.transaction().await?;
            // The head first: no append can slip in between the choice of
            // what to delete and the checkpoint that replaces it. An empty
            // chain has no row, and nothing to prune.
            let anchor = lock_head(&transaction, false).await?;
            let Some(head) = anchor.head else {
                return Ok(0);
            };
            let through = prune_through(&transaction, before_unix, head.position.seq).await?;
            let checkpoint_seq = anchor
                .checkpoint
                .map_or(0, |checkpoint| checkpoint.position.seq);
            if through <= checkpoint_seq {
                // Returning without committing writes nothing.
                return Ok(0);
            }
            let through_db = seq_to_db(through)?;
            let last_mac = sql::query_opt(
                &transaction,
                "SELECT mac FROM audit_log WHERE seq = $1",
                &[&through_db],
            )
            .await?
            .ok_or_else(|| {
                // Only a tampered log lacks an event below its head: the
                // checkpoint cannot be sealed from what is not there.
                StoreError::Failed(format!(
                    "the audit log has no event {through} to seal as the checkpoint; \
                     verify the chain"
                ))
            })?;
            let last_mac: Vec<u8> = last_mac.try_get(0)?;
            let mac = AuditMac::from_slice(&last_mac).ok_or_else(|| corrupt_entry(through))?;
            let deleted = sql::execute(
                &transaction,
                "DELETE FROM audit_log WHERE seq <= $1",
                &[&through_db],
            )
            .await?;
            let checkpoint = next_checkpoint(
                &*key,
                anchor.checkpoint.as_ref(),
                ChainPosition { seq: through, mac },
                deleted,
                context.at,
            )?;
            sql::execute(
                &transaction,
                "UPDATE audit_chain SET checkpoint_seq = $1, checkpoint_mac = $2, \
                 checkpoint_at = $3, checkpoint_seal = $4 WHERE id = 1",
                &[
                    &through_db,
                    &checkpoint.position.mac.0.as_slice(),
                    &to_unix(checkpoint.pruned_at),
                    &checkpoint.seal.0.as_slice(),
                ],
            )
            .await?;
            let pruned = context.record(
                None,
                AuditEvent::AuditPruned {
                    through_seq: through,
                    count: deleted,
                },
            );
            append_after(
                &transaction,
                &*key,
                Some(head),
                std::slice::from_ref(&pruned),
            )
            .await?;
            transaction.commit().await?;
            Ok(deleted)
        })
        .await
    }
}

/// The chain's ends as stored, without locking: the default (no head, no
/// checkpoint) when the row does not exist.
pub(crate) async fn stored_anchor(
    client: &impl GenericClient,
) -> Result<AuditAnchor, OperationError> {
    sql::query_opt(
        client,
        &format!("SELECT {ANCHOR_COLUMNS} FROM audit_chain WHERE id = 1"),
        &[],
    )
    .await?
    .as_ref()
    .map_or(Ok(AuditAnchor::default()), read_anchor)
}

/// Locks the head row and reads the chain's ends.
///
/// With `create`, a missing row (no event appended yet) is created first
/// (`ON CONFLICT DO NOTHING`) and then locked: two nodes making the first
/// appends of a deployment at once both try to insert it; the second
/// waits on the first's uncommitted row, finds it once the first commits
/// and then locks it, so only one of them writes `seq` 1. The common case,
/// a row that exists, costs the one locking read.
async fn lock_head(
    client: &impl GenericClient,
    create: bool,
) -> Result<AuditAnchor, OperationError> {
    // Sent together (one round trip): the setting, then the lock.
    let (timeout, head) = tokio::join!(
        client.batch_execute(HEAD_LOCK_TIMEOUT),
        sql::query_opt(client, LOCK_HEAD, &[])
    );
    timeout?;
    if let Some(row) = head? {
        return read_anchor(&row);
    }
    if !create {
        return Ok(AuditAnchor::default());
    }
    sql::execute(
        client,
        "INSERT INTO audit_chain (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
        &[],
    )
    .await?;
    // A new statement, so under READ COMMITTED it sees the row whether this
    // transaction inserted it or a concurrent one committed it meanwhile.
    let row = sql::query_one(client, LOCK_HEAD, &[]).await?;
    read_anchor(&row)
}

/// Chains `records` after `head` (already locked by this transaction),
/// inserts them and stores the new head, in one statement, so the head's
/// lock is held for as few round trips as possible. Returns the last
/// `seq`.
async fn append_after(
    client: &impl GenericClient,
    key: &dyn AuditKey,
    head: Option<SealedHead>,
    records: &[AuditRecord],
) -> Result<u64, OperationError> {
    let mut entries = Vec::with_capacity(records.len());
    let mut last = head;
    for record in records {
        let (sealed, next) = chain_next(key, last.as_ref(), record)?;
        entries.push(sealed);
        last = Some(next);
    }
    let head = match last {
        Some(head) if !entries.is_empty() => head,
        // Nothing to append: the chain stays where it is.
        _ => return Ok(last.map_or(0, |head| head.position.seq)),
    };
    let columns = EntryColumns::new(&entries)?;
    let head_seq = seq_to_db(head.position.seq)?;
    let head_mac = head.position.mac.0.as_slice();
    let head_seal = head.seal.0.as_slice();
    let mut parameters = columns.parameters().to_vec();
    parameters.extend_from_slice(&[&head_seq, &head_mac, &head_seal]);
    // The data-modifying CTE runs whether or not the UPDATE reads it.
    let updated = sql::execute(
        client,
        &format!(
            "WITH appended AS ({INSERT_ENTRIES}) \
             UPDATE audit_chain SET head_seq = $11, head_mac = $12, head_seal = $13 WHERE id = 1"
        ),
        &parameters,
    )
    .await?;
    if updated != 1 {
        // The caller locked (or created) the row in this transaction; only
        // a deleted row could get here, and the change must not commit
        // with a head that was not stored.
        return Err(StoreError::Failed("the audit chain's head row is missing".to_owned()).into());
    }
    Ok(head.position.seq)
}

/// Inserts entries given as [`EntryColumns::parameters`] (`$1` to `$10`).
pub(crate) const INSERT_ENTRIES: &str = "INSERT INTO audit_log \
     (seq, at, event, actor_id, subject_id, ip, user_agent, request_id, details, mac) \
     SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::UUID[], $5::UUID[], \
                          $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BYTEA[])";

/// Entries as one array per column, for [`INSERT_ENTRIES`]: one statement
/// for any number of entries.
pub(crate) struct EntryColumns<'a> {
    seqs: Vec<i64>,
    ats: Vec<i64>,
    names: Vec<&'a str>,
    actors: Vec<Option<Uuid>>,
    subjects: Vec<Option<Uuid>>,
    ips: Vec<Option<&'a str>>,
    agents: Vec<Option<&'a str>>,
    requests: Vec<Option<&'a str>>,
    details: Vec<&'a str>,
    macs: Vec<&'a [u8]>,
}

impl<'a> EntryColumns<'a> {
    pub(crate) fn new(entries: &'a [SealedAuditEntry]) -> Result<Self, StoreError> {
        Ok(Self {
            seqs: entries
                .iter()
                .map(|sealed| seq_to_db(sealed.entry.seq))
                .collect::<Result<_, _>>()?,
            ats: entries
                .iter()
                .map(|sealed| to_unix(sealed.entry.at))
                .collect(),
            names: entries
                .iter()
                .map(|sealed| sealed.entry.event.as_str())
                .collect(),
            actors: entries
                .iter()
                .map(|sealed| sealed.entry.actor_id.map(|id| id.as_uuid()))
                .collect(),
            subjects: entries
                .iter()
                .map(|sealed| sealed.entry.subject_id.map(|id| id.as_uuid()))
                .collect(),
            ips: entries
                .iter()
                .map(|sealed| sealed.entry.ip.as_deref())
                .collect(),
            agents: entries
                .iter()
                .map(|sealed| sealed.entry.user_agent.as_deref())
                .collect(),
            requests: entries
                .iter()
                .map(|sealed| sealed.entry.request_id.as_deref())
                .collect(),
            details: entries
                .iter()
                .map(|sealed| sealed.entry.details.as_str())
                .collect(),
            macs: entries
                .iter()
                .map(|sealed| sealed.mac.0.as_slice())
                .collect(),
        })
    }

    /// `$1` to `$10` of [`INSERT_ENTRIES`].
    pub(crate) fn parameters(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.seqs,
            &self.ats,
            &self.names,
            &self.actors,
            &self.subjects,
            &self.ips,
            &self.agents,
            &self.requests,
            &self.details,
            &self.macs,
        ]
    }
}

/// The last `seq` of the longest run from the chain's start whose events
/// are all before `before`: one below the first event at or after it, or
/// the head when every event is older.
async fn prune_through(
    client: &impl GenericClient,
    before: i64,
    head_seq: u64,
) -> Result<u64, OperationError> {
    let first_kept: Option<i64> = sql::query_one(
        client,
        "SELECT min(seq) FROM audit_log WHERE at >= $1",
        &[&before],
    )
    .await?
    .try_get(0)?;
    match first_kept {
        None => Ok(head_seq),
        Some(seq) => Ok(seq_from_db(seq)?.saturating_sub(1)),
    }
}

/// The filters of one listing, as stored values.
struct ListFilter<'a> {
    user: Option<Uuid>,
    subject: Option<Uuid>,
    events: &'a [String],
    since: Option<i64>,
    until: Option<i64>,
}

/// One page of [`AuditStore::list_audit_events`], newest first.
///
/// The statement is assembled from fixed pieces, never from input, so
/// that each combination of filters is planned (and cached) for itself
/// and can use its index, instead of one generic plan with `$n IS NULL OR
/// …` conditions that must scan the whole log.
async fn list_page(
    client: &impl GenericClient,
    below: Option<i64>,
    filter: ListFilter<'_>,
    limit: u32,
) -> Result<Page<AuditEntry>, OperationError> {
    let ListFilter {
        user,
        subject,
        events,
        since,
        until,
    } = filter;
    // One row more than asked for tells whether there is a next page.
    let fetch = i64::from(limit) + 1;
    let mut conditions = Vec::new();
    let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&fetch];
    if let Some(below) = &below {
        parameters.push(below);
        conditions.push(format!("seq < ${}", parameters.len()));
    }
    if let Some(user) = &user {
        parameters.push(user);
        let n = parameters.len();
        conditions.push(format!("(subject_id = ${n} OR actor_id = ${n})"));
    }
    if let Some(subject) = &subject {
        parameters.push(subject);
        conditions.push(format!("subject_id = ${}", parameters.len()));
    }
    if !events.is_empty() {
        parameters.push(&events);
        conditions.push(format!("event = ANY(${}::TEXT[])", parameters.len()));
    }
    if let Some(since) = &since {
        parameters.push(since);
        conditions.push(format!("at >= ${}", parameters.len()));
    }
    if let Some(until) = &until {
        parameters.push(until);
        conditions.push(format!("at < ${}", parameters.len()));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let rows = sql::query(
        client,
        &format!("SELECT {ENTRY_COLUMNS} FROM audit_log {filter} ORDER BY seq DESC LIMIT $1"),
        &parameters,
    )
    .await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(limit.min(rows.len()));
    for row in rows.iter().take(limit) {
        items.push(read_entry(row)?.entry);
    }
    let next = items
        .last()
        .filter(|_| more)
        .map(|entry| PageCursor::after_audit_event(entry.seq));
    Ok(Page { items, next })
}

/// An `audit_log` row ([`ENTRY_COLUMNS`]) as stored.
pub(crate) fn read_entry(row: &Row) -> Result<SealedAuditEntry, OperationError> {
    let seq = seq_from_db(row.try_get(0)?)?;
    let actor_id: Option<Uuid> = row.try_get(3)?;
    let subject_id: Option<Uuid> = row.try_get(4)?;
    let mac: Vec<u8> = row.try_get(9)?;
    Ok(SealedAuditEntry {
        entry: AuditEntry {
            seq,
            at: time(row.try_get(1)?, "audit_log", "at")?,
            event: row.try_get(2)?,
            actor_id: actor_id.map(UserId::from_uuid),
            subject_id: subject_id.map(UserId::from_uuid),
            ip: row.try_get(5)?,
            user_agent: row.try_get(6)?,
            request_id: row.try_get(7)?,
            details: row.try_get(8)?,
        },
        mac: AuditMac::from_slice(&mac).ok_or_else(|| corrupt_entry(seq))?,
    })
}

/// The `audit_chain` row ([`ANCHOR_COLUMNS`], also [`LOCK_HEAD`]'s)
/// parsed: a head when `head_seq` is set, a checkpoint when
/// `checkpoint_seq` is.
fn read_anchor(row: &Row) -> Result<AuditAnchor, OperationError> {
    let head_seq: Option<i64> = row.try_get(0)?;
    let head = match head_seq {
        None => None,
        Some(seq) => Some(SealedHead {
            position: ChainPosition {
                seq: seq_from_db(seq)?,
                mac: chain_mac(row.try_get(1)?, "head_mac")?,
            },
            seal: chain_mac(row.try_get(2)?, "head_seal")?,
        }),
    };
    let checkpoint_seq: Option<i64> = row.try_get(3)?;
    let checkpoint = match checkpoint_seq {
        None => None,
        Some(seq) => {
            let pruned_at = optional_time(row.try_get(5)?, "audit_chain", "checkpoint_at")?
                .ok_or_else(|| corrupt("audit_chain", "checkpoint_at"))?;
            Some(SealedCheckpoint {
                position: ChainPosition {
                    seq: seq_from_db(seq)?,
                    mac: chain_mac(row.try_get(4)?, "checkpoint_mac")?,
                },
                pruned_at,
                seal: chain_mac(row.try_get(6)?, "checkpoint_seal")?,
            })
        }
    };
    Ok(AuditAnchor { head, checkpoint })
}

/// A MAC column of `audit_chain`: exactly 32 bytes.
fn chain_mac(stored: Option<Vec<u8>>, column: &str) -> Result<AuditMac, StoreError> {
    stored
        .as_deref()
        .and_then(AuditMac::from_slice)
        .ok_or_else(|| corrupt("audit_chain", column))
}

/// A `seq` as stored (BIGINT).
pub(crate) fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Failed("the audit log is full".to_owned()))
}

/// A stored `seq` back; the schema keeps it positive.
pub(crate) fn seq_from_db(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| corrupt("audit_log", "seq"))
}

/// A stored event whose MAC is not 32 bytes. Its `seq` is named (it is
/// no secret), so the operator knows where to look.
fn corrupt_entry(seq: u64) -> StoreError {
    StoreError::Failed(format!(
        "corrupt row in audit_log: invalid mac at seq {seq}"
    ))
}
