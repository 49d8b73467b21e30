//! Micro-benchmarks of the two lookups every authenticated request makes,
//! and of appending one audit event (what each change adds to its write).
//!
//! `cargo bench -p portcullis-sqlite`. Each iteration includes the hop to
//! tokio's blocking pool and back, as in the server.

#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "tests: a failed set-up panics saying what failed, and tests read the real clock and draw ids as the code under test does"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_domain::ports::{AuditStore, SessionStore, UserStore};
use portcullis_domain::{
    EmailAddress, NewSession, NewUser, PasswordHashString, RefreshTokenHash, Role, ScopeSet,
    SessionId, User, UserId, Username,
};
use portcullis_sqlite::SqliteStore;
use portcullis_store_conformance::fixtures::{audit_record, test_audit_key};
use time::OffsetDateTime;

const USERS: usize = 10_000;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
}

fn seeded() -> (
    tempfile::TempDir,
    SqliteStore,
    User,
    SessionId,
    tokio::runtime::Runtime,
) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("bench.db")).expect("store");
    store.set_audit_key(test_audit_key());
    let (user, session) = runtime.block_on(async {
        let mut last = None;
        for n in 0..USERS {
            let user = User {
                id: UserId::random(),
                username: Username::parse(&format!("user{n}")).expect("username"),
                email: EmailAddress::parse(&format!("user{n}@example.com")).expect("email"),
                full_name: None,
                role: Role::User,
                disabled: false,
                created_at: now(),
            };
            store
                .insert_user(
                    &NewUser {
                        user: user.clone(),
                        password_hash: PasswordHashString::new(
                            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(),
                        ),
                    },
                    &audit_record(now()),
                )
                .await
                .expect("insert");
            last = Some(user);
        }
        let user = last.expect("seeded");
        let session = SessionId::random();
        store
            .create_session(
                &NewSession {
                    id: session,
                    user_id: user.id,
                    scopes: ScopeSet::parse("profile").expect("scope"),
                    refresh_token_hash: RefreshTokenHash::from_digest(vec![1; 32]),
                    created_at: now(),
                    expires_at: now() + Duration::from_secs(3600),
                    ip: None,
                    user_agent: None,
                },
                100,
                Duration::from_secs(3600),
                &audit_record(now()),
            )
            .await
            .expect("session");
        (user, session)
    });
    (dir, store, user, session, runtime)
}

fn lookups(c: &mut Criterion) {
    let (_dir, store, user, session, runtime) = seeded();
    let idle = Duration::from_secs(3600);
    c.bench_function("user_by_id", |b| {
        b.iter(|| runtime.block_on(store.find_user(black_box(user.id))))
    });
    c.bench_function("session_check", |b| {
        b.iter(|| {
            runtime.block_on(store.find_active_session(black_box(session), user.id, now(), idle))
        })
    });
}

fn audit(c: &mut Criterion) {
    let (_dir, store, _user, _session, runtime) = seeded();
    let record = audit_record(now());
    // Its own transaction: BEGIN IMMEDIATE, read the head, two MACs, insert
    // the entry, update the head, commit. A change pays the same minus the
    // BEGIN and COMMIT it has anyway.
    c.bench_function("append_audit_event", |b| {
        b.iter(|| runtime.block_on(store.append_audit_event(black_box(&record))))
    });
}

criterion_group!(benches, lookups, audit);
criterion_main!(benches);
