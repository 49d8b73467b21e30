//! [`AuditStore`] for [`SqliteStore`], and [`append`], the last step of
//! every transaction that changes something.
//!
//! SQLite has one writer at a time: every transaction that appends began
//! with `BEGIN IMMEDIATE`, so the head row it reads cannot move before it
//! commits, and the chain has no forks without any row lock of its own.

use async_trait::async_trait;
use portcullis_domain::audit::{
    AuditAnchor, AuditContext, AuditEntry, AuditEvent, AuditKey, AuditMac, AuditQuery, AuditRecord,
    ChainPosition, SealedAuditEntry, SealedCheckpoint, SealedHead, chain_next, missing_key_error,
    next_checkpoint,
};
use portcullis_domain::ports::AuditStore;
use portcullis_domain::{MAX_LISTING_PAGE_SIZE, Page, PageCursor, StoreError, UserId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{corrupt, from_unix, to_unix};
use crate::store::{OperationError, SqliteStore};

/// The columns of `audit_log`, in [`AuditRow::read`]'s order (also the
/// order [`insert_entry`] writes).
const COLUMNS: &str =
    "seq, at, event, actor_id, subject_id, ip, user_agent, request_id, details, mac";

/// The columns of `audit_chain` that [`read_anchor`] reads, in its order.
const CHAIN_COLUMNS: &str = "head_seq, head_mac, head_seal, \
     checkpoint_seq, checkpoint_mac, checkpoint_at, checkpoint_seal";

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit_event(&self, record: &AuditRecord) -> Result<u64, StoreError> {
        let key = self.audit_key();
        let record = record.clone();
        self.run("append_audit_event", move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let seq = append(&transaction, key.as_deref(), &record)?;
            transaction.commit()?;
            Ok(seq)
        })
        .await
    }

    async fn list_audit_events(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        let before_seq = query
            .page
            .after
            .as_ref()
            .map(|cursor| {
                cursor
                    .audit_position()
                    .and_then(|seq| i64::try_from(seq).map_err(|_| StoreError::InvalidCursor))
            })
            .transpose()?;
        let filter = ListFilter {
            user: query.user.map(|id| id.to_string()),
            subject: query.subject.map(|id| id.to_string()),
            events: query.events.clone(),
            since: query.since.map(whole_seconds_from),
            until: query.until.map(whole_seconds_from),
            before_seq,
        };
        // The caller clamps already; clamping here too keeps a zero limit
        // from producing an empty page that claims a next one.
        let limit = usize::try_from(query.page.limit.clamp(1, MAX_LISTING_PAGE_SIZE)).unwrap_or(1);
        self.run("list_audit_events", move |connection| {
            list_page(connection, &filter, limit)
        })
        .await
    }

    async fn audit_anchor(&self) -> Result<AuditAnchor, StoreError> {
        self.run("audit_anchor", |connection| read_anchor(connection))
            .await
    }

    async fn audit_chain_page(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<SealedAuditEntry>, StoreError> {
        // No stored seq exceeds i64::MAX, so a larger `after_seq` has
        // nothing after it.
        let Ok(after_seq) = i64::try_from(after_seq) else {
            return Ok(Vec::new());
        };
        let limit = i64::from(limit);
        self.run("audit_chain_page", move |connection| {
            let rows = connection
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                ))?
                .query_map(params![after_seq, limit], AuditRow::read)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows
                .into_iter()
                .map(AuditRow::into_sealed)
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn prune_audit_events(
        &self,
        before: OffsetDateTime,
        context: &AuditContext,
    ) -> Result<u64, StoreError> {
        let key = self.audit_key();
        let before = whole_seconds_from(before);
        let context = context.clone();
        self.run("prune_audit_events", move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let pruned = prune(&transaction, key.as_deref(), before, &context)?;
            if pruned > 0 {
                transaction.commit()?;
            }
            Ok(pruned)
        })
        .await
    }
}

/// Appends `record` to the chain and returns its `seq`: reads the head,
/// inserts the next entry and stores the new head. Must run inside the
/// change's `BEGIN IMMEDIATE` transaction, as its last step, so that the
/// entry commits or rolls back with the change. Without a key it fails
/// with [`missing_key_error`], and the caller's early return rolls the
/// change back.
pub(crate) fn append(
    connection: &Connection,
    key: Option<&dyn AuditKey>,
    record: &AuditRecord,
) -> Result<u64, OperationError> {
    let key = key.ok_or_else(missing_key_error)?;
    if !key.records() {
        // A benchmark's baseline (see `AuditKey::records`).
        return Ok(0);
    }
    let head = read_head(connection)?;
    let (sealed, head) = chain_next(key, head.as_ref(), record)?;
    insert_entry(connection, &sealed)?;
    connection
        .prepare_cached(
            "INSERT INTO audit_chain (id, head_seq, head_mac, head_seal) VALUES (1, ?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET head_seq = excluded.head_seq, \
             head_mac = excluded.head_mac, head_seal = excluded.head_seal",
        )?
        .execute(params![
            stored_seq(head.position.seq)?,
            head.position.mac.0.as_slice(),
            head.seal.0.as_slice(),
        ])?;
    Ok(sealed.entry.seq)
}

/// Appends each of `records` in order (see [`append`]).
pub(crate) fn append_all(
    connection: &Connection,
    key: Option<&dyn AuditKey>,
    records: &[AuditRecord],
) -> Result<(), OperationError> {
    for record in records {
        append(connection, key, record)?;
    }
    Ok(())
}

/// Writes one entry exactly as given (an append's, or a copied one).
pub(crate) fn insert_entry(
    connection: &Connection,
    sealed: &SealedAuditEntry,
) -> Result<(), OperationError> {
    let entry = &sealed.entry;
    connection
        .prepare_cached(&format!(
            "INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))?
        .execute(params![
            stored_seq(entry.seq)?,
            to_unix(entry.at),
            entry.event,
            entry.actor_id.map(|id| id.to_string()),
            entry.subject_id.map(|id| id.to_string()),
            entry.ip,
            entry.user_agent,
            entry.request_id,
            entry.details,
            sealed.mac.0.as_slice(),
        ])?;
    Ok(())
}

/// Every stored entry, in `seq` order (for the copy).
pub(crate) fn every_entry(
    connection: &Connection,
) -> Result<Vec<SealedAuditEntry>, OperationError> {
    let rows = connection
        .prepare(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"))?
        .query_map([], AuditRow::read)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(AuditRow::into_sealed)
        .collect::<Result<_, _>>()?)
}

/// Writes both ends of the chain exactly as given (for the copy); writes
/// no row for an anchor with neither, as an empty chain has none.
pub(crate) fn write_anchor(
    connection: &Connection,
    anchor: &AuditAnchor,
) -> Result<(), OperationError> {
    if anchor.head.is_none() && anchor.checkpoint.is_none() {
        return Ok(());
    }
    let head = anchor.head.as_ref();
    let checkpoint = anchor.checkpoint.as_ref();
    connection
        .prepare_cached(&format!(
            "INSERT INTO audit_chain (id, {CHAIN_COLUMNS}) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ))?
        .execute(params![
            head.map(|head| stored_seq(head.position.seq)).transpose()?,
            head.map(|head| head.position.mac.0.to_vec()),
            head.map(|head| head.seal.0.to_vec()),
            checkpoint
                .map(|checkpoint| stored_seq(checkpoint.position.seq))
                .transpose()?,
            checkpoint.map(|checkpoint| checkpoint.position.mac.0.to_vec()),
            checkpoint.map(|checkpoint| to_unix(checkpoint.pruned_at)),
            checkpoint.map(|checkpoint| checkpoint.seal.0.to_vec()),
        ])?;
    Ok(())
}

/// Both ends of the chain as stored.
pub(crate) fn read_anchor(connection: &Connection) -> Result<AuditAnchor, OperationError> {
    let row = connection
        .prepare_cached(&format!(
            "SELECT {CHAIN_COLUMNS} FROM audit_chain WHERE id = 1"
        ))?
        .query_row([], |row| {
            Ok(ChainRow {
                head_seq: row.get(0)?,
                head_mac: row.get(1)?,
                head_seal: row.get(2)?,
                checkpoint_seq: row.get(3)?,
                checkpoint_mac: row.get(4)?,
                checkpoint_at: row.get(5)?,
                checkpoint_seal: row.get(6)?,
            })
        })
        .optional()?;
    Ok(row
        .map(ChainRow::into_anchor)
        .transpose()?
        .unwrap_or_default())
}

/// The head alone, for [`append`]: a damaged checkpoint must not stop the
/// service from recording events (verification reports it).
fn read_head(connection: &Connection) -> Result<Option<SealedHead>, OperationError> {
    let row = connection
        .prepare_cached("SELECT head_seq, head_mac, head_seal FROM audit_chain WHERE id = 1")?
        .query_row([], |row| {
            Ok((
                row.get::<_, Option<i64>>(0)?,
                row.get::<_, Option<Vec<u8>>>(1)?,
                row.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })
        .optional()?;
    let Some((seq, mac, seal)) = row else {
        return Ok(None);
    };
    Ok(head_from(seq, mac, seal)?)
}

/// Whether the file holds any audit event or chain row (for the copy's
/// emptiness check).
pub(crate) fn holds_audit_log(connection: &Connection) -> Result<bool, OperationError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM audit_log) OR EXISTS (SELECT 1 FROM audit_chain)",
        [],
        |row| row.get(0),
    )?)
}

/// The body of [`AuditStore::prune_audit_events`], inside its `BEGIN
/// IMMEDIATE` transaction; how many entries were deleted (0: nothing
/// written, and the caller does not commit).
fn prune(
    connection: &Connection,
    key: Option<&dyn AuditKey>,
    before: i64,
    context: &AuditContext,
) -> Result<u64, OperationError> {
    let anchor = read_anchor(connection)?;
    let Some(head) = anchor.head else {
        return Ok(0);
    };
    let after = anchor
        .checkpoint
        .map_or(0, |checkpoint| checkpoint.position.seq);
    let any_entry: bool = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM audit_log)")?
        .query_row([], |row| row.get(0))?;
    if !any_entry {
        return Ok(0);
    }
    // The first entry at or after `before`, in chain order: everything
    // before it is the run to delete. A `seq` scan from the start stops
    // there, so the cost is that of the deleted rows.
    let first_kept: Option<i64> = connection
        .prepare_cached("SELECT seq FROM audit_log WHERE at >= ?1 ORDER BY seq LIMIT 1")?
        .query_row([before], |row| row.get(0))
        .optional()?;
    let through = match first_kept {
        Some(seq) => read_seq(seq)?.saturating_sub(1),
        None => head.position.seq,
    };
    if through <= after {
        return Ok(0);
    }
    let through_stored = stored_seq(through)?;
    let mac: Option<Vec<u8>> = connection
        .prepare_cached("SELECT mac FROM audit_log WHERE seq = ?1")?
        .query_row([through_stored], |row| row.get(0))
        .optional()?;
    // The entry the checkpoint would seal is gone: sealing anything else
    // would hide that, so nothing is pruned until the chain is looked at.
    let Some(mac) = mac else {
        return Err(StoreError::Failed(format!(
            "the audit log has no entry {through} to seal a checkpoint at; run `audit verify`"
        ))
        .into());
    };
    let mac = AuditMac::from_slice(&mac).ok_or_else(|| corrupt("audit_log", "mac"))?;
    let key = key.ok_or_else(missing_key_error)?;
    let deleted = connection
        .prepare_cached("DELETE FROM audit_log WHERE seq <= ?1")?
        .execute([through_stored])?;
    let deleted = u64::try_from(deleted).unwrap_or(u64::MAX);
    let checkpoint = next_checkpoint(
        key,
        anchor.checkpoint.as_ref(),
        ChainPosition { seq: through, mac },
        deleted,
        context.at,
    )?;
    connection
        .prepare_cached(
            "UPDATE audit_chain SET checkpoint_seq = ?1, checkpoint_mac = ?2, \
             checkpoint_at = ?3, checkpoint_seal = ?4 WHERE id = 1",
        )?
        .execute(params![
            through_stored,
            checkpoint.position.mac.0.as_slice(),
            to_unix(checkpoint.pruned_at),
            checkpoint.seal.0.as_slice(),
        ])?;
    append(
        connection,
        Some(key),
        &context.record(
            None,
            AuditEvent::AuditPruned {
                through_seq: through,
                count: deleted,
            },
        ),
    )?;
    Ok(deleted)
}

/// The conditions of one listing.
struct ListFilter {
    user: Option<String>,
    subject: Option<String>,
    events: Vec<String>,
    since: Option<i64>,
    until: Option<i64>,
    before_seq: Option<i64>,
}

/// One page of [`AuditStore::list_audit_events`], newest first.
fn list_page(
    connection: &Connection,
    filter: &ListFilter,
    limit: usize,
) -> Result<Page<AuditEntry>, OperationError> {
    // Assembled from fixed pieces and generated parameter names, never
    // from input, so that each shape of filter is one cached statement.
    let mut conditions = Vec::new();
    let mut parameters: Vec<(String, &dyn rusqlite::ToSql)> = Vec::new();
    if let Some(before_seq) = &filter.before_seq {
        conditions.push("seq < :before_seq".to_owned());
        parameters.push((":before_seq".to_owned(), before_seq));
    }
    if let Some(user) = &filter.user {
        conditions.push("(subject_id = :user OR actor_id = :user)".to_owned());
        parameters.push((":user".to_owned(), user));
    }
    if let Some(subject) = &filter.subject {
        conditions.push("subject_id = :subject".to_owned());
        parameters.push((":subject".to_owned(), subject));
    }
    if !filter.events.is_empty() {
        let names: Vec<String> = (0..filter.events.len())
            .map(|index| format!(":event{index}"))
            .collect();
        conditions.push(format!("event IN ({})", names.join(", ")));
        for (name, event) in names.into_iter().zip(&filter.events) {
            parameters.push((name, event));
        }
    }
    if let Some(since) = &filter.since {
        conditions.push("at >= :since".to_owned());
        parameters.push((":since".to_owned(), since));
    }
    if let Some(until) = &filter.until {
        conditions.push("at < :until".to_owned());
        parameters.push((":until".to_owned(), until));
    }
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    // One row more than asked for tells whether there is a next page.
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    parameters.push((":fetch".to_owned(), &fetch));
    let sql =
        format!("SELECT {COLUMNS} FROM audit_log {filter_sql} ORDER BY seq DESC LIMIT :fetch");
    let named: Vec<(&str, &dyn rusqlite::ToSql)> = parameters
        .iter()
        .map(|(name, value)| (name.as_str(), *value))
        .collect();
    let rows = connection
        .prepare_cached(&sql)?
        .query_map(named.as_slice(), AuditRow::read)?
        .collect::<Result<Vec<_>, _>>()?;
    let more = rows.len() > limit;
    let entries = rows
        .into_iter()
        .take(limit)
        .map(|row| row.into_sealed().map(|sealed| sealed.entry))
        .collect::<Result<Vec<_>, _>>()?;
    let next = entries
        .last()
        .filter(|_| more)
        .map(|entry| PageCursor::after_audit_event(entry.seq));
    Ok(Page {
        items: entries,
        next,
    })
}

/// The whole seconds a stored `at` is compared with for a bound `time`:
/// rounded up, so that `at >= bound` and `at < bound` say of a stored
/// whole second exactly what they say of `time` itself.
fn whole_seconds_from(time: OffsetDateTime) -> i64 {
    let seconds = to_unix(time);
    if time.nanosecond() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    }
}

/// A `seq` as stored.
fn stored_seq(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq)
        .map_err(|_| StoreError::Failed("an audit seq beyond what SQLite stores".to_owned()))
}

/// A stored `seq` back.
fn read_seq(stored: i64) -> Result<u64, StoreError> {
    u64::try_from(stored).map_err(|_| corrupt("audit_log", "seq"))
}

/// A stored MAC back; the messages name the column, never its content.
fn read_mac(stored: &[u8], table: &str, column: &str) -> Result<AuditMac, StoreError> {
    AuditMac::from_slice(stored).ok_or_else(|| corrupt(table, column))
}

/// A stored head back: `None` when the chain row holds none.
fn head_from(
    seq: Option<i64>,
    mac: Option<Vec<u8>>,
    seal: Option<Vec<u8>>,
) -> Result<Option<SealedHead>, StoreError> {
    let Some(seq) = seq else {
        return Ok(None);
    };
    let (Some(mac), Some(seal)) = (mac, seal) else {
        return Err(corrupt("audit_chain", "head"));
    };
    Ok(Some(SealedHead {
        position: ChainPosition {
            seq: u64::try_from(seq).map_err(|_| corrupt("audit_chain", "head_seq"))?,
            mac: read_mac(&mac, "audit_chain", "head_mac")?,
        },
        seal: read_mac(&seal, "audit_chain", "head_seal")?,
    }))
}

/// The `audit_chain` row as stored, parsed by [`ChainRow::into_anchor`].
struct ChainRow {
    head_seq: Option<i64>,
    head_mac: Option<Vec<u8>>,
    head_seal: Option<Vec<u8>>,
    checkpoint_seq: Option<i64>,
    checkpoint_mac: Option<Vec<u8>>,
    checkpoint_at: Option<i64>,
    checkpoint_seal: Option<Vec<u8>>,
}

impl ChainRow {
    fn into_anchor(self) -> Result<AuditAnchor, StoreError> {
        let head = head_from(self.head_seq, self.head_mac, self.head_seal)?;
        let checkpoint = match (
            self.checkpoint_seq,
            self.checkpoint_mac,
            self.checkpoint_at,
            self.checkpoint_seal,
        ) {
            (None, _, _, _) => None,
            (Some(seq), Some(mac), Some(at), Some(seal)) => Some(SealedCheckpoint {
                position: ChainPosition {
                    seq: u64::try_from(seq)
                        .map_err(|_| corrupt("audit_chain", "checkpoint_seq"))?,
                    mac: read_mac(&mac, "audit_chain", "checkpoint_mac")?,
                },
                pruned_at: from_unix(at).ok_or_else(|| corrupt("audit_chain", "checkpoint_at"))?,
                seal: read_mac(&seal, "audit_chain", "checkpoint_seal")?,
            }),
            _ => return Err(corrupt("audit_chain", "checkpoint")),
        };
        Ok(AuditAnchor { head, checkpoint })
    }
}

/// An `audit_log` row as stored, parsed by [`AuditRow::into_sealed`].
struct AuditRow {
    seq: i64,
    at: i64,
    event: String,
    actor_id: Option<String>,
    subject_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: String,
    mac: Vec<u8>,
}

impl AuditRow {
    /// Reads the [`COLUMNS`], starting at column 0.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            at: row.get(1)?,
            event: row.get(2)?,
            actor_id: row.get(3)?,
            subject_id: row.get(4)?,
            ip: row.get(5)?,
            user_agent: row.get(6)?,
            request_id: row.get(7)?,
            details: row.get(8)?,
            mac: row.get(9)?,
        })
    }

    /// The entry as stored. Nothing is checked beyond the types: whether
    /// it belongs to the chain is for the verifier to say.
    fn into_sealed(self) -> Result<SealedAuditEntry, StoreError> {
        let user_id = |stored: Option<String>, column: &str| {
            stored
                .map(|id| {
                    Uuid::parse_str(&id)
                        .map(UserId::from_uuid)
                        .map_err(|_| corrupt("audit_log", column))
                })
                .transpose()
        };
        Ok(SealedAuditEntry {
            entry: AuditEntry {
                seq: read_seq(self.seq)?,
                at: from_unix(self.at).ok_or_else(|| corrupt("audit_log", "at"))?,
                event: self.event,
                actor_id: user_id(self.actor_id, "actor_id")?,
                subject_id: user_id(self.subject_id, "subject_id")?,
                ip: self.ip,
                user_agent: self.user_agent,
                request_id: self.request_id,
                details: self.details,
            },
            mac: read_mac(&self.mac, "audit_log", "mac")?,
        })
    }
}
