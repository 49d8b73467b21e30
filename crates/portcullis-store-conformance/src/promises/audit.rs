//! The audit log: every change appends its event in its own transaction and
//! only when it happens; one gapless chain that verifies, whoever appends;
//! exact filtered listing; pruning that leaves a verifiable chain.
//!
//! The store passed in holds [`TestAuditKey`] (the suite's backends install
//! [`test_audit_key`](crate::fixtures::test_audit_key) in `$fresh`), so the
//! chain is checked with [`verify_store`] and that key.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::audit::{
    AdminChangeSummary, AuditAnchor, AuditContext, AuditEntry, AuditEvent, AuditQuery, AuditRecord,
    ChainReport, LoginCredential, LoginFailure, SessionEndReason, verify_store,
};
use portcullis_domain::ports::Store;
use portcullis_domain::{
    AdminUserChanges, ApiKeyId, ClientInfo, FullName, KeyState, PageCursor, PageRequest,
    ProfileChanges, RefreshOutcome, Role, RotationOutcome, SessionId, StoreError, StoredSigningKey,
    UserId,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::signing_keys::{rotation, signing_key};
use super::{create_key, insert, is_active, rotate, start};
use crate::fixtures::{
    DAY, HOUR, NO_CAP, TestAuditKey, admin, at, audit_context, audit_record, email_address, hash,
    name, named, new_api_key, new_session, new_user, t0, token_hash,
};

/// [`t0`] plus `n` minutes.
fn minute(n: u64) -> OffsetDateTime {
    at(Duration::from_secs(60 * n))
}

/// A request's context: `actor` acting at `at` from client number `n`
/// (address, user agent and request id all tell which).
fn request(actor: Option<UserId>, n: u8, at: OffsetDateTime) -> AuditContext {
    AuditContext {
        at,
        actor_id: actor,
        client: ClientInfo {
            ip: Some(IpAddr::from([192, 0, 2, n])),
            user_agent: Some(format!("conformance/{n}")),
            request_id: Some(format!("request-{n}")),
        },
    }
}

/// The `seq` of the chain's head; 0 for an empty chain.
async fn head_seq<S: Store + ?Sized>(store: &S) -> u64 {
    store
        .audit_anchor()
        .await
        .expect("reading the anchor")
        .head
        .map_or(0, |head| head.position.seq)
}

/// Every page of `query` at `limit` per page, checked to be exact pages:
/// every page but the last full, only the last without a cursor, no empty
/// page after the first.
async fn pages<S: Store + ?Sized>(store: &S, query: &AuditQuery, limit: u32) -> Vec<AuditEntry> {
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_audit_events(&AuditQuery {
                page: PageRequest { limit, after },
                ..query.clone()
            })
            .await
            .expect("listing events");
        let size = u32::try_from(page.items.len()).expect("a page fits a u32");
        assert!(size <= limit, "a page holds at most its limit: {query:?}");
        let first = listed.is_empty();
        listed.extend(page.items);
        match page.next {
            Some(next) => {
                assert_eq!(size, limit, "a page before the last is full: {query:?}");
                after = Some(next);
            }
            None => {
                assert!(
                    size > 0 || first,
                    "no empty page follows a cursor: {query:?}"
                );
                return listed;
            }
        }
    }
}

/// Every event, newest first.
async fn every_event<S: Store + ?Sized>(store: &S) -> Vec<AuditEntry> {
    pages(store, &AuditQuery::default(), 100).await
}

/// The report of a chain that verifies with [`TestAuditKey`].
async fn verified<S: Store + Sized>(store: &S) -> ChainReport {
    verify_store(store, &TestAuditKey)
        .await
        .expect("reading the chain")
        .expect("the chain verifies")
}

/// An entry's details, which must be a JSON object.
fn details(entry: &AuditEntry) -> Value {
    let details: Value = serde_json::from_str(&entry.details).expect("details are JSON");
    assert!(details.is_object(), "details are an object: {details}");
    details
}

fn seqs(entries: &[AuditEntry]) -> Vec<u64> {
    entries.iter().map(|entry| entry.seq).collect()
}

/// Every change appends the record it was given (or the one the store
/// builds), in the order the changes happened: `seq` 1..n without gaps,
/// each field as given, details as JSON; the whole chain verifies and its
/// head is the last event.
pub async fn every_change_appends_its_event_in_order_and_the_chain_verifies<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    let root = admin("root");
    let bob = named("bob");
    let mut expected: Vec<AuditRecord> = Vec::new();

    // Accounts: one registering herself, one made on the command line, one
    // by an administrator.
    for (user, context) in [
        (&alice, request(Some(alice.id), 1, minute(1))),
        (&root, AuditContext::system(minute(2))),
        (&bob, request(Some(root.id), 3, minute(3))),
    ] {
        let record = context.record(
            Some(user.id),
            AuditEvent::UserRegistered {
                username: user.username.clone(),
                role: user.role,
            },
        );
        store
            .insert_user(&new_user(user), &record)
            .await
            .expect("insert");
        expected.push(record);
    }

    let mut sessions = Vec::new();
    for n in [4, 5] {
        let session = new_session(&alice, minute(n.into()));
        let record = request(Some(alice.id), n, minute(n.into())).record(
            Some(alice.id),
            AuditEvent::LoginSucceeded {
                session_id: session.id,
            },
        );
        store
            .create_session(&session, NO_CAP, DAY, &record)
            .await
            .expect("create session");
        expected.push(record);
        sessions.push(session);
    }
    let (kept, other) = (&sessions[0], &sessions[1]);

    let record = request(Some(alice.id), 6, minute(6)).record(
        Some(alice.id),
        AuditEvent::SessionEnded {
            session_id: other.id,
            reason: SessionEndReason::EndedByUser,
        },
    );
    assert!(
        store
            .revoke_session(other.id, alice.id, minute(6), &record)
            .await
            .expect("revoke session")
    );
    expected.push(record);

    let record =
        request(Some(alice.id), 7, minute(7)).record(Some(alice.id), AuditEvent::PasswordChanged);
    store
        .change_password(alice.id, &hash("second"), Some(kept.id), minute(7), &record)
        .await
        .expect("change password");
    expected.push(record);

    let record = request(Some(alice.id), 8, minute(8)).record(
        Some(alice.id),
        AuditEvent::ProfileUpdated {
            email: false,
            full_name: true,
        },
    );
    store
        .update_profile(
            alice.id,
            &ProfileChanges {
                email: None,
                full_name: Some(Some(FullName::parse("Alice A.").expect("full name"))),
            },
            minute(8),
            &record,
        )
        .await
        .expect("update profile");
    expected.push(record);

    let key = new_api_key(&alice, minute(9));
    let record = request(Some(alice.id), 9, minute(9)).record(
        Some(alice.id),
        AuditEvent::ApiKeyCreated {
            key_id: key.id,
            name: key.name.clone(),
            scopes: key.scopes,
        },
    );
    store
        .create_api_key(&key, NO_CAP, &record)
        .await
        .expect("create key");
    expected.push(record);

    let record = request(Some(alice.id), 10, minute(10))
        .record(Some(alice.id), AuditEvent::ApiKeyRevoked { key_id: key.id });
    assert!(
        store
            .revoke_api_key(key.id, alice.id, minute(10), &record)
            .await
            .expect("revoke key")
    );
    expected.push(record);

    let record = request(Some(root.id), 11, minute(11)).record(
        Some(alice.id),
        AuditEvent::AdminUserUpdated(AdminChangeSummary {
            email: true,
            ..AdminChangeSummary::default()
        }),
    );
    store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                email: Some(email_address("alice@example.org")),
                ..AdminUserChanges::default()
            },
            minute(11),
            &record,
        )
        .await
        .expect("admin update");
    expected.push(record);

    // The store builds this one: it alone knows the count.
    let context = request(Some(alice.id), 12, minute(12));
    assert_eq!(
        store
            .revoke_user_sessions(alice.id, None, minute(12), &context)
            .await
            .expect("revoke sessions"),
        1,
        "the session the password change kept"
    );
    expected.push(context.record(
        Some(alice.id),
        AuditEvent::SessionsEnded {
            count: 1,
            kept_current: false,
        },
    ));

    let current = signing_key(KeyState::Current, minute(13));
    let next = StoredSigningKey {
        signs_from: minute(13) + HOUR,
        ..signing_key(KeyState::Next, minute(13))
    };
    let record = AuditContext::system(minute(13)).record(
        None,
        AuditEvent::SigningKeysInstalled {
            kids: vec![current.kid.clone(), next.kid.clone()],
        },
    );
    assert!(
        store
            .install_signing_keys(&[current.clone(), next.clone()], &record)
            .await
            .expect("install keys")
    );
    expected.push(record);

    let rotating = rotation(&current.kid, minute(14));
    let record = AuditContext::system(minute(14)).record(
        None,
        AuditEvent::SigningKeyRotated {
            retired: current.kid.clone(),
            current: next.kid.clone(),
            next: Some(rotating.new_next.kid.clone()),
        },
    );
    assert_eq!(
        store
            .rotate_signing_keys(&rotating, &record)
            .await
            .expect("rotate keys"),
        RotationOutcome::Rotated
    );
    expected.push(record);

    let record = request(None, 15, minute(15)).record(
        Some(alice.id),
        AuditEvent::LoginFailed {
            reason: LoginFailure::WrongPassword,
            credential: LoginCredential::Password,
        },
    );
    let seq = store
        .append_audit_event(&record)
        .await
        .expect("append an event");
    expected.push(record);
    assert_eq!(
        Some(seq),
        u64::try_from(expected.len()).ok(),
        "an append answers its seq"
    );

    // By username: the store names the account.
    let record = AuditContext::system(minute(16)).record(
        None,
        AuditEvent::AdminUserUpdated(AdminChangeSummary {
            disabled: Some(true),
            ..AdminChangeSummary::default()
        }),
    );
    store
        .set_disabled(&bob.username, true, minute(16), &record)
        .await
        .expect("disable");
    expected.push(record.about(bob.id));

    let record =
        request(Some(root.id), 17, minute(17)).record(Some(bob.id), AuditEvent::AccountDeleted);
    store
        .delete_user(bob.id, &record)
        .await
        .expect("delete user");
    expected.push(record);

    let n = u64::try_from(expected.len()).expect("count");
    let listed = every_event(&*store).await;
    assert_eq!(
        seqs(&listed),
        (1..=n).rev().collect::<Vec<_>>(),
        "seq 1..n without gaps, newest listed first"
    );
    for (record, entry) in expected.iter().zip(listed.iter().rev()) {
        assert_eq!(
            *entry,
            record.entry(entry.seq),
            "event {} is stored as given",
            entry.seq
        );
        assert_eq!(entry.event, record.event.name());
        details(entry);
    }

    // A few fields spelled out, so that a mistake shared by a store and
    // `AuditRecord::entry` still shows.
    let first = listed.last().expect("the first event");
    assert_eq!(first.event, "user.registered");
    assert_eq!(first.actor_id, Some(alice.id));
    assert_eq!(first.subject_id, Some(alice.id));
    assert_eq!(first.ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(first.user_agent.as_deref(), Some("conformance/1"));
    assert_eq!(first.request_id.as_deref(), Some("request-1"));
    assert_eq!(first.at, minute(1));
    assert_eq!(details(first), json!({"username": "alice", "role": "user"}));
    let by_command_line = &listed[listed.len() - 2];
    assert_eq!(by_command_line.subject_id, Some(root.id));
    assert_eq!(
        (
            by_command_line.actor_id,
            by_command_line.ip.as_deref(),
            by_command_line.user_agent.as_deref(),
            by_command_line.request_id.as_deref(),
        ),
        (None, None, None, None),
        "what a context does not hold is stored as absent"
    );
    let ended = listed
        .iter()
        .find(|entry| entry.event == "sessions.ended")
        .expect("sessions.ended");
    assert_eq!(ended.subject_id, Some(alice.id));
    assert_eq!(details(ended), json!({"count": 1, "kept_current": false}));
    let disabled = &listed[1];
    assert_eq!(disabled.event, "user.updated_by_admin");
    assert_eq!(
        disabled.subject_id,
        Some(bob.id),
        "about the account disabled"
    );

    let report = verified(&*store).await;
    assert_eq!(report.events, n, "every event verified");
    assert_eq!(report.starts_after, 0);
    assert_eq!(
        report.head.map(|head| head.seq),
        Some(n),
        "the head is the last event"
    );

    let chain = store
        .audit_chain_page(0, 1000)
        .await
        .expect("reading the chain");
    assert_eq!(
        chain
            .iter()
            .map(|sealed| sealed.entry.clone())
            .collect::<Vec<_>>(),
        listed.iter().rev().cloned().collect::<Vec<_>>(),
        "the chain is the listing in seq order"
    );
    let middle = store
        .audit_chain_page(3, 2)
        .await
        .expect("reading the chain");
    assert_eq!(
        middle
            .iter()
            .map(|sealed| sealed.entry.seq)
            .collect::<Vec<_>>(),
        vec![4, 5],
        "a chain page starts after its seq and holds at most its limit"
    );
    assert_eq!(middle.as_slice(), &chain[3..5], "with the same MACs");
}

/// A change that fails, or that finds nothing to do, appends nothing: the
/// head stays, the listing is unchanged and the chain still verifies.
pub async fn a_change_that_fails_or_finds_nothing_appends_nothing<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    let bob = named("bob");
    let root = admin("root");
    for user in [&alice, &bob, &root] {
        insert(&*store, user).await;
    }
    let session = start(&*store, &alice, t0()).await;
    let ended = start(&*store, &alice, t0()).await;
    assert!(
        store
            .revoke_session(ended.id, alice.id, t0(), &audit_record(t0()))
            .await
            .expect("revoke")
    );
    let key = create_key(&*store, &alice, t0()).await;
    let current = signing_key(KeyState::Current, t0());
    assert!(
        store
            .install_signing_keys(std::slice::from_ref(&current), &audit_record(t0()))
            .await
            .expect("install")
    );
    let first = rotation(&current.kid, at(HOUR));
    assert_eq!(
        store
            .rotate_signing_keys(&first, &audit_record(at(HOUR)))
            .await
            .expect("rotate"),
        RotationOutcome::Rotated
    );

    let before = head_seq(&*store).await;
    let listed_before = every_event(&*store).await;
    let now = at(HOUR);
    let record = || audit_record(now);

    let failures: Vec<(&str, Result<(), StoreError>)> = vec![
        (
            "a taken username",
            store
                .insert_user(
                    &new_user(&crate::fixtures::user("alice", "other@example.com")),
                    &record(),
                )
                .await,
        ),
        (
            "a taken email",
            store
                .insert_user(
                    &new_user(&crate::fixtures::user("carol", "alice@example.com")),
                    &record(),
                )
                .await,
        ),
        (
            "deleting the last admin",
            store.delete_user(root.id, &record()).await,
        ),
        (
            "demoting the last admin",
            store
                .admin_update_user(
                    root.id,
                    &AdminUserChanges {
                        role: Some(Role::User),
                        ..AdminUserChanges::default()
                    },
                    now,
                    &record(),
                )
                .await
                .map(drop),
        ),
        (
            "an admin change of an unknown id",
            store
                .admin_update_user(
                    UserId::random(),
                    &AdminUserChanges::default(),
                    now,
                    &record(),
                )
                .await
                .map(drop),
        ),
        (
            "an admin change to a taken email",
            store
                .admin_update_user(
                    alice.id,
                    &AdminUserChanges {
                        email: Some(bob.email.clone()),
                        ..AdminUserChanges::default()
                    },
                    now,
                    &record(),
                )
                .await
                .map(drop),
        ),
        (
            "a profile update of an unknown id",
            store
                .update_profile(UserId::random(), &ProfileChanges::default(), now, &record())
                .await
                .map(drop),
        ),
        (
            "a profile update to a taken email",
            store
                .update_profile(
                    alice.id,
                    &ProfileChanges {
                        email: Some(bob.email.clone()),
                        full_name: None,
                    },
                    now,
                    &record(),
                )
                .await
                .map(drop),
        ),
        (
            "a password change of an unknown id",
            store
                .change_password(UserId::random(), &hash("x"), None, now, &record())
                .await,
        ),
        (
            "disabling an unknown username",
            store
                .set_disabled(&name("nobody"), true, now, &record())
                .await
                .map(drop),
        ),
        (
            "demoting an unknown username",
            store
                .set_role(&name("nobody"), Role::User, now, &record())
                .await
                .map(drop),
        ),
        (
            "deleting an unknown id",
            store.delete_user(UserId::random(), &record()).await,
        ),
        (
            "a session of an unknown user",
            store
                .create_session(&new_session(&named("ghost"), now), NO_CAP, DAY, &record())
                .await,
        ),
        (
            "a key of an unknown user",
            store
                .create_api_key(&new_api_key(&named("ghost"), now), NO_CAP, &record())
                .await,
        ),
        (
            "a key past the cap",
            store
                .create_api_key(&new_api_key(&alice, now), 1, &record())
                .await,
        ),
    ];
    for (what, result) in failures {
        assert!(result.is_err(), "{what} fails");
    }

    let nothing_to_do = [
        (
            "revoking an ended session",
            store
                .revoke_session(ended.id, alice.id, now, &record())
                .await
                .expect("revoke"),
        ),
        (
            "revoking someone else's session",
            store
                .revoke_session(session.id, bob.id, now, &record())
                .await
                .expect("revoke"),
        ),
        (
            "revoking an unknown session",
            store
                .revoke_session(SessionId::random(), alice.id, now, &record())
                .await
                .expect("revoke"),
        ),
        (
            "revoking someone else's key",
            store
                .revoke_api_key(key.id, bob.id, now, &record())
                .await
                .expect("revoke key"),
        ),
        (
            "revoking an unknown key",
            store
                .revoke_api_key(ApiKeyId::random(), alice.id, now, &record())
                .await
                .expect("revoke key"),
        ),
        (
            "installing keys once keys exist",
            store
                .install_signing_keys(&[signing_key(KeyState::Current, now)], &record())
                .await
                .expect("install"),
        ),
    ];
    for (what, changed) in nothing_to_do {
        assert!(!changed, "{what} changes nothing");
    }
    assert_eq!(
        store
            .revoke_user_sessions(bob.id, None, now, &audit_context(now))
            .await
            .expect("revoke sessions"),
        0,
        "bob has no session"
    );
    assert_eq!(
        store
            .revoke_user_sessions(alice.id, Some(session.id), now, &audit_context(now))
            .await
            .expect("revoke sessions"),
        0,
        "alice has only the kept one"
    );
    assert_eq!(
        store
            .rotate_signing_keys(&rotation(&current.kid, now), &record())
            .await
            .expect("rotate"),
        RotationOutcome::Superseded,
        "a rotation from a key no longer current"
    );
    for presented in [token_hash(), ended.refresh_token_hash.clone()] {
        let outcome = store
            .rotate_refresh_token(&presented, &token_hash(), now, DAY, &audit_context(now))
            .await
            .expect("rotate refresh token");
        assert!(
            matches!(outcome, RefreshOutcome::Rejected),
            "an unknown token, or the unused token of an ended session: {outcome:?}"
        );
    }
    assert_eq!(
        store
            .prune_audit_events(t0() - DAY, &audit_context(now))
            .await
            .expect("prune"),
        0,
        "nothing is older"
    );

    assert_eq!(head_seq(&*store).await, before, "the head stays");
    assert_eq!(
        every_event(&*store).await,
        listed_before,
        "nothing was appended"
    );
    assert_eq!(verified(&*store).await.events, before);
}

/// A reused refresh token appends `refresh_token.reused` about the
/// session's owner in the caller's context (a rotation appends nothing);
/// the sessions the cap ends are each recorded as `session.ended` with the
/// reason `session_cap`, before the login that ended them.
pub async fn a_reused_refresh_token_and_the_session_cap_are_audited<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let first = start(&*store, &alice, t0()).await;
    let before = head_seq(&*store).await;
    let (outcome, _) = rotate(&*store, &first.refresh_token_hash, minute(1)).await;
    assert!(
        matches!(outcome, RefreshOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        head_seq(&*store).await,
        before,
        "a rotation appends nothing"
    );

    for (n, when) in [(7, minute(2)), (8, minute(3))] {
        // The refresh request comes with no account: only the token.
        let context = request(None, n, when);
        let outcome = store
            .rotate_refresh_token(
                &first.refresh_token_hash,
                &token_hash(),
                when,
                DAY,
                &context,
            )
            .await
            .expect("present a used token");
        assert!(
            matches!(outcome, RefreshOutcome::Reused { session_id } if session_id == first.id),
            "{outcome:?}"
        );
        let seq = head_seq(&*store).await;
        let listed = every_event(&*store).await;
        let reused = &listed[0];
        assert_eq!(seq, reused.seq);
        assert_eq!(
            *reused,
            context
                .record(
                    Some(alice.id),
                    AuditEvent::RefreshTokenReused {
                        session_id: first.id,
                    },
                )
                .entry(seq),
            "each reuse is recorded about the owner"
        );
        assert_eq!(reused.event, "refresh_token.reused");
        assert_eq!(reused.subject_id, Some(alice.id));
        assert_eq!(reused.ip.as_deref(), Some(format!("192.0.2.{n}").as_str()));
        assert_eq!(details(reused), json!({"session_id": first.id.to_string()}));
    }

    let older = start(&*store, &alice, minute(4)).await;
    let newer = start(&*store, &alice, minute(5)).await;
    let added = new_session(&alice, minute(6));
    let login = request(Some(alice.id), 9, minute(6)).record(
        Some(alice.id),
        AuditEvent::LoginSucceeded {
            session_id: added.id,
        },
    );
    let before = head_seq(&*store).await;
    store
        .create_session(&added, 1, DAY, &login)
        .await
        .expect("create at the cap");
    assert!(!is_active(&*store, &older, minute(6)).await);
    assert!(!is_active(&*store, &newer, minute(6)).await);
    assert!(is_active(&*store, &added, minute(6)).await);

    assert_eq!(head_seq(&*store).await, before + 3, "two ended, one login");
    let listed = every_event(&*store).await;
    assert_eq!(listed[0], login.entry(before + 3), "the login comes last");
    let mut evicted = HashSet::new();
    for entry in &listed[1..3] {
        let details = details(entry);
        assert_eq!(entry.event, "session.ended");
        assert_eq!(details["reason"], json!("session_cap"));
        let session_id = details["session_id"]
            .as_str()
            .expect("a session id")
            .to_owned();
        let ended = [&older, &newer]
            .into_iter()
            .find(|session| session.id.to_string() == session_id)
            .expect("an evicted session");
        assert_eq!(
            *entry,
            login
                .with_event(AuditEvent::SessionEnded {
                    session_id: ended.id,
                    reason: SessionEndReason::SessionCap,
                })
                .entry(entry.seq),
            "in the login's context"
        );
        evicted.insert(session_id);
    }
    assert_eq!(evicted.len(), 2, "one event for each ended session");
    assert_eq!(verified(&*store).await.events, before + 3);
}

/// Disabling and changing the role by username (the command line's
/// changes) are recorded about the account changed, whatever subject the
/// caller's record names.
pub async fn disable_and_role_changes_by_username_are_about_the_account<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let changes: [(Option<bool>, Option<Role>); 3] = [
        (Some(true), None),
        (Some(false), None),
        (None, Some(Role::Admin)),
    ];
    for (n, (disabled, role)) in (1_u8..).zip(changes) {
        let when = minute(n.into());
        // No subject, or a wrong one: only the store knows the account.
        let subject = (n % 2 == 0).then(UserId::random);
        let record = AuditContext::system(when).record(
            subject,
            AuditEvent::AdminUserUpdated(AdminChangeSummary {
                role,
                disabled,
                ..AdminChangeSummary::default()
            }),
        );
        let user = match (disabled, role) {
            (Some(disabled), _) => store
                .set_disabled(&alice.username, disabled, when, &record)
                .await
                .expect("set disabled"),
            (None, Some(role)) => store
                .set_role(&alice.username, role, when, &record)
                .await
                .expect("set role"),
            (None, None) => unreachable!("every change names one"),
        };
        assert_eq!(user.id, alice.id);
        let seq = head_seq(&*store).await;
        let listed = every_event(&*store).await;
        assert_eq!(listed[0], record.about(alice.id).entry(seq));
        assert_eq!(listed[0].subject_id, Some(alice.id));
    }
    verified(&*store).await;
}

/// Appends racing from many tasks (and changes racing with them) form one
/// chain: every `seq` from 1 to the number of events exactly once, and it
/// verifies.
pub async fn concurrent_appends_form_one_gapless_chain<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let appenders: Vec<_> = (0..8_u8)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for attempt in 0..25 {
                    let record = request(None, task, minute(attempt)).record(
                        None,
                        AuditEvent::LoginRateLimited {
                            credential: LoginCredential::Basic,
                        },
                    );
                    seqs.push(store.append_audit_event(&record).await.expect("append"));
                }
                seqs
            })
        })
        .collect();
    let logins: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let alice = alice.clone();
            tokio::spawn(async move {
                for _ in 0..3 {
                    let session = new_session(&alice, t0());
                    let record = audit_context(t0()).record(
                        Some(alice.id),
                        AuditEvent::LoginSucceeded {
                            session_id: session.id,
                        },
                    );
                    store
                        .create_session(&session, NO_CAP, DAY, &record)
                        .await
                        .expect("create session");
                }
            })
        })
        .collect();
    let mut answered = HashSet::new();
    for task in appenders {
        for seq in task.await.expect("append task") {
            assert!(answered.insert(seq), "seq {seq} answered twice");
        }
    }
    for task in logins {
        task.await.expect("login task");
    }

    let total = 1 + 8 * 25 + 4 * 3;
    let chain = store
        .audit_chain_page(0, 1000)
        .await
        .expect("reading the chain");
    assert_eq!(
        chain
            .iter()
            .map(|sealed| sealed.entry.seq)
            .collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "one gapless chain"
    );
    assert_eq!(
        chain
            .iter()
            .filter(|sealed| sealed.entry.event == "login.succeeded")
            .count(),
        12
    );
    let report = verified(&*store).await;
    assert_eq!(report.events, total);
    assert_eq!(report.head.map(|head| head.seq), Some(total));
}

/// Which `seq`s, newest first, of `all` match `query`: the listing's
/// promise spelled out.
fn expected_seqs(all: &[AuditEntry], query: &AuditQuery) -> Vec<u64> {
    let mut matching: Vec<u64> = all
        .iter()
        .filter(|entry| {
            query
                .user
                .is_none_or(|user| entry.subject_id == Some(user) || entry.actor_id == Some(user))
        })
        .filter(|entry| {
            query
                .subject
                .is_none_or(|subject| entry.subject_id == Some(subject))
        })
        .filter(|entry| query.events.is_empty() || query.events.contains(&entry.event))
        .filter(|entry| query.since.is_none_or(|since| entry.at >= since))
        .filter(|entry| query.until.is_none_or(|until| entry.at < until))
        .map(|entry| entry.seq)
        .collect();
    matching.sort_unstable_by(|a, b| b.cmp(a));
    matching
}

/// The listing is newest first and filters exactly: a user as subject or
/// actor, a subject only, event names, `since` inclusive and `until` exclusive; following
/// the cursors returns every match exactly once, events appended between
/// pages disturb no page, and a cursor the store did not make is refused.
pub async fn the_audit_listing_filters_and_pages_exactly<S: Store + 'static>(store: Arc<S>) {
    let alice = UserId::random();
    let bob = UserId::random();
    let carol = UserId::random();
    let mut all = Vec::new();
    for i in 0..30_u8 {
        let when = minute(i.into());
        let record = match i % 4 {
            0 => request(None, i, when).record(
                Some(alice),
                AuditEvent::LoginSucceeded {
                    session_id: SessionId::random(),
                },
            ),
            1 => request(Some(alice), i, when).record(
                Some(bob),
                AuditEvent::AdminUserUpdated(AdminChangeSummary::default()),
            ),
            2 => request(Some(bob), i, when).record(
                Some(bob),
                AuditEvent::LoginFailed {
                    reason: LoginFailure::Disabled,
                    credential: LoginCredential::Password,
                },
            ),
            _ => AuditContext::system(when).record(Some(carol), AuditEvent::AccountDeleted),
        };
        let seq = store.append_audit_event(&record).await.expect("append");
        all.push(record.entry(seq));
    }

    let names = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
    let queries = [
        AuditQuery::default(),
        AuditQuery {
            user: Some(alice),
            ..AuditQuery::default()
        },
        AuditQuery {
            user: Some(bob),
            ..AuditQuery::default()
        },
        AuditQuery {
            user: Some(carol),
            ..AuditQuery::default()
        },
        AuditQuery {
            subject: Some(alice),
            ..AuditQuery::default()
        },
        AuditQuery {
            subject: Some(bob),
            ..AuditQuery::default()
        },
        AuditQuery {
            user: Some(alice),
            subject: Some(bob),
            ..AuditQuery::default()
        },
        AuditQuery {
            user: Some(UserId::random()),
            ..AuditQuery::default()
        },
        AuditQuery {
            events: names(&["login.failed"]),
            ..AuditQuery::default()
        },
        AuditQuery {
            events: names(&["login.failed", "account.deleted"]),
            ..AuditQuery::default()
        },
        AuditQuery {
            events: names(&["signing_key.rotated"]),
            ..AuditQuery::default()
        },
        AuditQuery {
            since: Some(minute(10)),
            until: Some(minute(20)),
            ..AuditQuery::default()
        },
        AuditQuery {
            since: Some(minute(25)),
            ..AuditQuery::default()
        },
        AuditQuery {
            until: Some(minute(5)),
            ..AuditQuery::default()
        },
        AuditQuery {
            user: Some(bob),
            events: names(&["login.failed", "login.succeeded"]),
            since: Some(minute(6)),
            until: Some(minute(26)),
            ..AuditQuery::default()
        },
    ];
    for query in &queries {
        let wanted = expected_seqs(&all, query);
        for limit in [1, 7, 100] {
            let listed = pages(&*store, query, limit).await;
            assert_eq!(
                seqs(&listed),
                wanted,
                "every match exactly once, newest first: {query:?} at {limit} a page"
            );
            for entry in &listed {
                assert_eq!(*entry, all[usize::try_from(entry.seq - 1).expect("index")]);
            }
        }
    }
    let window = expected_seqs(&all, &queries[11]);
    assert_eq!(window.len(), 10, "since is inclusive, until exclusive");
    assert_eq!(
        window.first(),
        Some(&20),
        "the event at until is not listed"
    );
    assert_eq!(window.last(), Some(&11), "the event at since is listed");

    // An event appended between pages lands before the first page, not in
    // a later one.
    let first = store
        .list_audit_events(&AuditQuery {
            page: PageRequest {
                limit: 7,
                after: None,
            },
            ..AuditQuery::default()
        })
        .await
        .expect("first page");
    assert_eq!(seqs(&first.items), (24..=30).rev().collect::<Vec<_>>());
    store
        .append_audit_event(&audit_record(minute(40)))
        .await
        .expect("append");
    let mut rest = Vec::new();
    let mut after = first.next;
    while let Some(cursor) = after {
        let page = store
            .list_audit_events(&AuditQuery {
                page: PageRequest {
                    limit: 7,
                    after: Some(cursor),
                },
                ..AuditQuery::default()
            })
            .await
            .expect("next page");
        rest.extend(seqs(&page.items));
        after = page.next;
    }
    assert_eq!(rest, (1..=23).rev().collect::<Vec<_>>());

    for cursor in [
        PageCursor::new("not a cursor"),
        PageCursor::after_user(3),
        PageCursor::after_session(0, 0, SessionId::random().as_uuid()),
    ] {
        let result = store
            .list_audit_events(&AuditQuery {
                page: PageRequest {
                    limit: 10,
                    after: Some(cursor),
                },
                ..AuditQuery::default()
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor)),
            "{result:?}"
        );
    }
}

/// Pruning deletes exactly the oldest run of events before the cut (an
/// old event after a newer one stays), seals a checkpoint at the last
/// deleted one and appends `audit.pruned`; the rest of the chain verifies
/// from the checkpoint. With nothing to prune, nothing is written.
pub async fn pruning_keeps_a_verifiable_chain<S: Store + 'static>(store: Arc<S>) {
    assert_eq!(
        store
            .prune_audit_events(at(DAY), &audit_context(at(DAY)))
            .await
            .expect("prune"),
        0,
        "an empty store prunes nothing"
    );
    assert_eq!(
        store.audit_anchor().await.expect("anchor"),
        AuditAnchor::default(),
        "and writes nothing"
    );

    let seconds = |n: u64| at(Duration::from_secs(n));
    // Five old events, a new one, an old one written late (a node whose
    // clock is behind), two new ones.
    let times = [
        seconds(0),
        seconds(1),
        seconds(2),
        seconds(3),
        seconds(4),
        at(DAY),
        seconds(10),
        at(DAY) + HOUR,
        at(DAY) + HOUR * 2,
    ];
    for when in times {
        store
            .append_audit_event(&audit_record(when))
            .await
            .expect("append");
    }
    let before_pruning = store.audit_chain_page(0, 100).await.expect("chain");

    let context = request(None, 1, at(DAY * 2));
    assert_eq!(
        store
            .prune_audit_events(at(HOUR), &context)
            .await
            .expect("prune"),
        5,
        "the five oldest, up to the first newer event"
    );
    let chain = store.audit_chain_page(0, 100).await.expect("chain");
    assert_eq!(
        chain
            .iter()
            .map(|sealed| sealed.entry.seq)
            .collect::<Vec<_>>(),
        vec![6, 7, 8, 9, 10],
        "the late old event stays"
    );
    assert_eq!(&chain[..4], &before_pruning[5..], "the rest is untouched");
    let anchor = store.audit_anchor().await.expect("anchor");
    let checkpoint = anchor.checkpoint.expect("a checkpoint");
    assert_eq!(checkpoint.position.seq, 5);
    assert_eq!(checkpoint.position.mac, before_pruning[4].mac);
    assert_eq!(checkpoint.pruned_at, at(DAY * 2));
    let pruned = &chain[4].entry;
    assert_eq!(
        *pruned,
        context
            .record(
                None,
                AuditEvent::AuditPruned {
                    through_seq: 5,
                    count: 5,
                },
            )
            .entry(10)
    );
    assert_eq!(details(pruned), json!({"through_seq": 5, "count": 5}));
    let report = verified(&*store).await;
    assert_eq!(report.starts_after, 5);
    assert_eq!(report.events, 5);
    assert_eq!(report.head.map(|head| head.seq), Some(10));
    assert_eq!(
        seqs(&every_event(&*store).await),
        vec![10, 9, 8, 7, 6],
        "the listing shows what is left"
    );

    assert_eq!(
        store
            .prune_audit_events(at(HOUR), &audit_context(at(DAY * 2)))
            .await
            .expect("prune again"),
        0,
        "nothing old is left at the start"
    );
    assert_eq!(head_seq(&*store).await, 10, "and nothing was appended");
    assert_eq!(store.audit_anchor().await.expect("anchor"), anchor);

    // Everything is older than this cut, the last pruning's event too.
    assert_eq!(
        store
            .prune_audit_events(at(DAY * 3), &audit_context(at(DAY * 3)))
            .await
            .expect("prune everything"),
        5
    );
    let chain = store.audit_chain_page(0, 100).await.expect("chain");
    assert_eq!(chain.len(), 1, "only the new pruning's event");
    assert_eq!(chain[0].entry.seq, 11);
    assert_eq!(
        details(&chain[0].entry),
        json!({"through_seq": 10, "count": 5})
    );
    let report = verified(&*store).await;
    assert_eq!(report.starts_after, 10);
    assert_eq!(report.events, 1);
    assert_eq!(report.head.map(|head| head.seq), Some(11));

    // The event at the cut itself is not before it.
    assert_eq!(
        store
            .prune_audit_events(at(DAY * 3), &audit_context(at(DAY * 3)))
            .await
            .expect("prune at the cut"),
        0
    );
    assert_eq!(head_seq(&*store).await, 11);
}

/// An empty store has no head and no checkpoint, lists nothing, and its
/// (empty) chain verifies.
pub async fn an_empty_store_has_an_empty_whole_chain<S: Store + 'static>(store: Arc<S>) {
    assert_eq!(
        store.audit_anchor().await.expect("anchor"),
        AuditAnchor::default()
    );
    assert!(
        store
            .audit_chain_page(0, 100)
            .await
            .expect("chain")
            .is_empty()
    );
    let page = store
        .list_audit_events(&AuditQuery::default())
        .await
        .expect("listing");
    assert!(page.items.is_empty());
    assert!(page.next.is_none());
    let report = verified(&*store).await;
    assert_eq!(report.events, 0);
    assert_eq!(report.starts_after, 0);
    assert_eq!(report.head, None);
}
