//! Opens a store on a fresh database in a temporary directory, inserts an
//! account (recording it in the audit log) and reads it back by username,
//! in a different case.
//!
//! Run with `cargo run -p portcullis-sqlite --example open_store`.

#![allow(clippy::print_stdout)]

use portcullis_domain::audit::{AuditContext, AuditEvent, verify_store};
use portcullis_domain::ports::{Clock, SystemClock, UserStore};
use portcullis_domain::{
    EmailAddress, FullName, NewUser, PasswordHashString, Role, User, UserId, Username,
};
use portcullis_sqlite::SqliteStore;
use portcullis_store_conformance::fixtures::test_audit_key;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let directory = tempfile::tempdir()?;
    let path = directory.path().join("portcullis.sqlite3");
    let store = SqliteStore::open(&path)?;
    println!("opened {}", store.path().display());
    // Every change appends its audit event, MACed with this key: the
    // service gives the one derived from the master key
    // (`portcullis_adapters::MasterAuditKey`); this is a test stand-in.
    let audit_key = test_audit_key();
    store.set_audit_key(audit_key.clone());

    let now = SystemClock.now();
    let user = User {
        id: UserId::random(),
        username: Username::parse("alice")?,
        email: EmailAddress::parse("alice@example.com")?,
        full_name: Some(FullName::parse("Alice Liddell")?),
        role: Role::User,
        disabled: false,
        // The store keeps whole seconds.
        created_at: now.replace_nanosecond(0).unwrap_or(now),
    };
    // A real hash comes from portcullis-crypto; storage treats it as opaque text.
    let password_hash = PasswordHashString::new(
        "$argon2id$v=19$m=19456,t=2,p=1$ZXhhbXBsZXNhbHQ$ZXhhbXBsZWhhc2g".into(),
    );
    // What the change records: here, the command line registering an
    // account (no actor, no client).
    let audit = AuditContext::system(now).record(
        Some(user.id),
        AuditEvent::UserRegistered {
            username: user.username.clone(),
            role: user.role,
        },
    );
    store
        .insert_user(
            &NewUser {
                user: user.clone(),
                password_hash,
            },
            &audit,
        )
        .await?;

    let found = store
        .find_credentials(&Username::parse("ALICE")?)
        .await?
        .ok_or("alice was not found")?;
    assert_eq!(found.user, user);
    println!(
        "found {} <{}>, role {}, created {}",
        found.user.username,
        found.user.email,
        found.user.role.as_str(),
        found.user.created_at
    );

    let report = verify_store(&store, &*audit_key).await??;
    println!("audit log: {} event(s), chain intact", report.events);
    Ok(())
}
