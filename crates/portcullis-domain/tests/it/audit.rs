//! The audit log as the use-cases write it: each change appends the event
//! api.md lists, with who acted, whom it is about and where the request
//! came from; a refused change appends nothing; no event holds a secret;
//! the listings filter as promised; pruning leaves a chain that verifies.

use std::net::IpAddr;
use std::time::Duration;

use portcullis_domain::audit::{AuditEntry, AuditQuery, USER_VISIBLE_EVENTS, verify_store};
use portcullis_domain::ports::AuditStore;
use portcullis_domain::{
    AdminUserUpdate, ApiKeyRequest, AuditListRequest, AuthError, ClientInfo, ConflictField,
    Initiator, LoginRequest, LogoutScope, PageRequest, Password, PasswordChangeRequest, Principal,
    ProfileUpdateRequest, RefreshRequest, RegistrationRequest, Role, TokenGrant, TokenTypeHint,
    User, UserId,
};
use portcullis_store_conformance::fixtures::TestAuditKey;
use serde_json::{Value, json};

use crate::fakes::Harness;

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// A client with an address, a user agent and a request id of its own.
fn client(n: u8) -> ClientInfo {
    ClientInfo {
        ip: Some(IpAddr::from([192, 0, 2, n])),
        user_agent: Some(format!("agent/{n}")),
        request_id: Some(format!("request-{n}")),
    }
}

fn registration(username: &str) -> RegistrationRequest {
    RegistrationRequest {
        username: username.to_owned(),
        email: format!("{username}@example.com"),
        full_name: None,
        password: Password::new(PASSWORD.to_owned()),
    }
}

/// An account made from the command line.
async fn account(harness: &Harness, username: &str, role: Role) -> User {
    harness
        .service
        .create_user(registration(username), role, &Initiator::command_line())
        .await
        .expect("created")
}

fn login_request(username: &str, password: &str, client: &ClientInfo) -> LoginRequest {
    LoginRequest {
        username: username.to_owned(),
        password: Password::new(password.to_owned()),
        scope: None,
        client: client.clone(),
    }
}

async fn login(harness: &Harness, username: &str, client: &ClientInfo) -> TokenGrant {
    harness
        .service
        .login(login_request(username, PASSWORD, client))
        .await
        .expect("login")
}

async fn principal_of(harness: &Harness, grant: &TokenGrant) -> Principal {
    harness
        .service
        .authenticate_access_token(&grant.access_token)
        .await
        .expect("valid")
}

/// A login and the principal of its access token.
async fn signed_in(harness: &Harness, username: &str) -> (TokenGrant, Principal) {
    let grant = login(harness, username, &ClientInfo::default()).await;
    let principal = principal_of(harness, &grant).await;
    (grant, principal)
}

/// Every stored event, oldest first, read page by page.
async fn events(harness: &Harness) -> Vec<AuditEntry> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = harness
            .store
            .list_audit_events(&AuditQuery {
                page: PageRequest { limit: 100, after },
                ..AuditQuery::default()
            })
            .await
            .expect("listed");
        all.extend(page.items);
        match page.next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    all.reverse();
    all
}

/// The `seq` of the newest event (0 for none): what [`appended`] counts
/// from.
async fn mark(harness: &Harness) -> u64 {
    events(harness).await.last().map_or(0, |entry| entry.seq)
}

/// The events appended after `mark`, oldest first.
async fn appended(harness: &Harness, mark: u64) -> Vec<AuditEntry> {
    events(harness)
        .await
        .into_iter()
        .filter(|entry| entry.seq > mark)
        .collect()
}

/// The one event appended after `mark`.
async fn one_appended(harness: &Harness, mark: u64) -> AuditEntry {
    let mut new = appended(harness, mark).await;
    assert_eq!(new.len(), 1, "exactly one event expected: {new:#?}");
    new.remove(0)
}

/// Fails unless no event was appended after `mark`.
async fn assert_nothing_appended(harness: &Harness, mark: u64) {
    let new = appended(harness, mark).await;
    assert!(new.is_empty(), "no event expected: {new:#?}");
}

/// What an event should say.
struct Expected<'a> {
    event: &'a str,
    actor: Option<UserId>,
    subject: Option<UserId>,
    client: &'a ClientInfo,
    details: Value,
}

#[track_caller]
fn check(entry: &AuditEntry, expected: Expected<'_>) {
    assert_eq!(entry.event, expected.event, "{entry:#?}");
    assert_eq!(entry.actor_id, expected.actor, "actor of {entry:#?}");
    assert_eq!(entry.subject_id, expected.subject, "subject of {entry:#?}");
    assert_eq!(
        entry.ip,
        expected.client.ip.map(|ip| ip.to_string()),
        "ip of {entry:#?}"
    );
    assert_eq!(
        entry.user_agent, expected.client.user_agent,
        "user agent of {entry:#?}"
    );
    assert_eq!(
        entry.request_id, expected.client.request_id,
        "request id of {entry:#?}"
    );
    let details: Value = serde_json::from_str(&entry.details).expect("details are JSON");
    assert_eq!(details, expected.details, "details of {entry:#?}");
}

#[tokio::test]
async fn new_accounts_are_recorded_with_who_made_them_and_a_conflict_appends_nothing() {
    let harness = Harness::new();
    let from = client(1);
    let alice = harness
        .service
        .register(registration("alice"), &from)
        .await
        .expect("registered");
    check(
        &one_appended(&harness, 0).await,
        Expected {
            event: "user.registered",
            actor: None,
            subject: Some(alice.id),
            client: &from,
            details: json!({"username": "alice", "role": "user"}),
        },
    );

    let before = mark(&harness).await;
    let root = account(&harness, "root", Role::Admin).await;
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "user.registered",
            actor: None,
            subject: Some(root.id),
            client: &ClientInfo::default(),
            details: json!({"username": "root", "role": "admin"}),
        },
    );

    let (_, admin) = signed_in(&harness, "root").await;
    let from = client(2);
    let before = mark(&harness).await;
    let bob = harness
        .service
        .create_user(
            registration("bob"),
            Role::User,
            &Initiator::caller(&admin, &from),
        )
        .await
        .expect("created");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "user.registered",
            actor: Some(root.id),
            subject: Some(bob.id),
            client: &from,
            details: json!({"username": "bob", "role": "user"}),
        },
    );

    let before = mark(&harness).await;
    let taken = harness
        .service
        .register(registration("alice"), &client(3))
        .await;
    assert!(
        matches!(taken, Err(AuthError::Conflict(ConflictField::Username))),
        "{taken:?}"
    );
    assert_nothing_appended(&harness, before).await;
}

#[tokio::test]
async fn a_login_is_recorded_with_the_session_it_started() {
    let harness = Harness::new();
    let alice = account(&harness, "alice", Role::User).await;
    let from = client(4);
    let before = mark(&harness).await;
    let grant = login(&harness, "alice", &from).await;
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "login.succeeded",
            actor: Some(alice.id),
            subject: Some(alice.id),
            client: &from,
            details: json!({"session_id": grant.session_id.to_string()}),
        },
    );
}

#[tokio::test]
async fn a_login_past_the_session_cap_records_the_session_it_ended_first() {
    // The harness allows three active sessions per user.
    let harness = Harness::new();
    let alice = account(&harness, "alice", Role::User).await;
    let oldest = login(&harness, "alice", &ClientInfo::default()).await;
    for _ in 0..2 {
        harness.clock.advance(Duration::from_secs(60));
        login(&harness, "alice", &ClientInfo::default()).await;
    }
    harness.clock.advance(Duration::from_secs(60));
    let from = client(22);
    let before = mark(&harness).await;
    let newest = login(&harness, "alice", &from).await;
    let new = appended(&harness, before).await;
    assert_eq!(new.len(), 2, "{new:#?}");
    let own = |event, details| Expected {
        event,
        actor: Some(alice.id),
        subject: Some(alice.id),
        client: &from,
        details,
    };
    check(
        &new[0],
        own(
            "session.ended",
            json!({"session_id": oldest.session_id.to_string(), "reason": "session_cap"}),
        ),
    );
    check(
        &new[1],
        own(
            "login.succeeded",
            json!({"session_id": newest.session_id.to_string()}),
        ),
    );
}

#[tokio::test]
async fn failed_logins_are_recorded_with_their_reason_and_credential() {
    let harness = Harness::new();
    let alice = account(&harness, "alice", Role::User).await;
    let bob = account(&harness, "bob", Role::User).await;
    harness
        .service
        .set_disabled("bob", true, &Initiator::command_line())
        .await
        .expect("disabled");

    for (username, password, subject, reason) in [
        ("nobody", PASSWORD, None, "unknown_user"),
        ("not a name", PASSWORD, None, "unknown_user"),
        (
            "alice",
            "wrong password!!",
            Some(alice.id),
            "wrong_password",
        ),
        ("bob", PASSWORD, Some(bob.id), "disabled"),
    ] {
        let from = client(5);
        let before = mark(&harness).await;
        let result = harness
            .service
            .login(login_request(username, password, &from))
            .await;
        assert!(
            matches!(result, Err(AuthError::InvalidGrant)),
            "{username}: {result:?}"
        );
        check(
            &one_appended(&harness, before).await,
            Expected {
                event: "login.failed",
                actor: None,
                subject,
                client: &from,
                details: json!({"reason": reason, "credential": "password"}),
            },
        );
    }

    for (username, password, subject, reason) in [
        ("nobody", PASSWORD, None, "unknown_user"),
        (
            "alice",
            "wrong password!!",
            Some(alice.id),
            "wrong_password",
        ),
        ("bob", PASSWORD, Some(bob.id), "disabled"),
    ] {
        let from = client(6);
        let before = mark(&harness).await;
        let result = harness
            .service
            .authenticate_basic(username, &Password::new(password.to_owned()), &from)
            .await;
        assert!(
            matches!(result, Err(AuthError::InvalidToken)),
            "{username}: {result:?}"
        );
        check(
            &one_appended(&harness, before).await,
            Expected {
                event: "login.failed",
                actor: None,
                subject,
                client: &from,
                details: json!({"reason": reason, "credential": "basic"}),
            },
        );
    }

    // A Basic credential that works starts no session: nothing to record.
    let before = mark(&harness).await;
    harness
        .service
        .authenticate_basic("alice", &Password::new(PASSWORD.to_owned()), &client(6))
        .await
        .expect("valid");
    assert_nothing_appended(&harness, before).await;
}

#[tokio::test]
async fn a_login_the_limiter_refuses_is_recorded_without_a_subject() {
    let harness = Harness::new();
    account(&harness, "alice", Role::User).await;
    *harness.limiter.budget.lock().expect("lock") = Some(0);

    let from = client(7);
    let before = mark(&harness).await;
    let result = harness
        .service
        .login(login_request("alice", PASSWORD, &from))
        .await;
    assert!(
        matches!(result, Err(AuthError::RateLimited { .. })),
        "{result:?}"
    );
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "login.rate_limited",
            actor: None,
            subject: None,
            client: &from,
            details: json!({"credential": "password"}),
        },
    );

    let before = mark(&harness).await;
    let result = harness
        .service
        .authenticate_basic("alice", &Password::new(PASSWORD.to_owned()), &from)
        .await;
    assert!(
        matches!(result, Err(AuthError::RateLimited { .. })),
        "{result:?}"
    );
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "login.rate_limited",
            actor: None,
            subject: None,
            client: &from,
            details: json!({"credential": "basic"}),
        },
    );
}

#[tokio::test]
async fn a_replayed_refresh_token_is_recorded_with_the_session_it_ended() {
    let harness = Harness::new();
    let alice = account(&harness, "alice", Role::User).await;
    let grant = login(&harness, "alice", &ClientInfo::default()).await;
    let refresh = |token: &str, client: ClientInfo| RefreshRequest {
        refresh_token: token.to_owned(),
        scope: None,
        client,
    };

    let before = mark(&harness).await;
    harness
        .service
        .refresh(refresh(&grant.refresh_token, client(8)))
        .await
        .expect("rotated");
    assert_nothing_appended(&harness, before).await;

    let thief = client(9);
    let replay = harness
        .service
        .refresh(refresh(&grant.refresh_token, thief.clone()))
        .await;
    assert!(matches!(replay, Err(AuthError::InvalidGrant)), "{replay:?}");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "refresh_token.reused",
            actor: None,
            subject: Some(alice.id),
            client: &thief,
            details: json!({"session_id": grant.session_id.to_string()}),
        },
    );
}

#[tokio::test]
async fn logouts_record_the_sessions_they_end() {
    let harness = Harness::new();
    let alice = account(&harness, "alice", Role::User).await;
    let (this, principal) = signed_in(&harness, "alice").await;
    signed_in(&harness, "alice").await;
    signed_in(&harness, "alice").await;
    let from = client(10);

    let before = mark(&harness).await;
    harness
        .service
        .logout(&principal, LogoutScope::Others, &from)
        .await
        .expect("logout");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "sessions.ended",
            actor: Some(alice.id),
            subject: Some(alice.id),
            client: &from,
            details: json!({"count": 2, "kept_current": true}),
        },
    );

    // Nothing left to end: nothing to record.
    let before = mark(&harness).await;
    harness
        .service
        .logout(&principal, LogoutScope::Others, &from)
        .await
        .expect("logout");
    assert_nothing_appended(&harness, before).await;

    harness
        .service
        .logout(&principal, LogoutScope::Local, &from)
        .await
        .expect("logout");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "session.ended",
            actor: Some(alice.id),
            subject: Some(alice.id),
            client: &from,
            details: json!({"session_id": this.session_id.to_string(), "reason": "logout"}),
        },
    );

    let (_, principal) = signed_in(&harness, "alice").await;
    signed_in(&harness, "alice").await;
    let before = mark(&harness).await;
    harness
        .service
        .logout(&principal, LogoutScope::Global, &from)
        .await
        .expect("logout");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "sessions.ended",
            actor: Some(alice.id),
            subject: Some(alice.id),
            client: &from,
            details: json!({"count": 2, "kept_current": false}),
        },
    );
}

#[tokio::test]
async fn revocations_and_sessions_ended_by_their_owner_are_recorded_with_their_reason() {
    let harness = Harness::new();
    let alice = account(&harness, "alice", Role::User).await;
    let from = client(11);

    for by_refresh in [true, false] {
        let grant = login(&harness, "alice", &ClientInfo::default()).await;
        let (token, hint) = if by_refresh {
            (&grant.refresh_token, Some(TokenTypeHint::RefreshToken))
        } else {
            (&grant.access_token, None)
        };
        let before = mark(&harness).await;
        harness
            .service
            .revoke_token(token, hint, &from)
            .await
            .expect("revoked");
        check(
            &one_appended(&harness, before).await,
            Expected {
                event: "session.ended",
                actor: None,
                subject: Some(alice.id),
                client: &from,
                details: json!({"session_id": grant.session_id.to_string(), "reason": "revoked"}),
            },
        );
        // Revoked already, or never a token: nothing more to record.
        for again in [token.as_str(), "nonsense"] {
            harness
                .service
                .revoke_token(again, None, &from)
                .await
                .expect("silently fine");
        }
        assert_eq!(appended(&harness, before).await.len(), 1);
    }

    let (_, principal) = signed_in(&harness, "alice").await;
    let other = login(&harness, "alice", &ClientInfo::default()).await;
    let before = mark(&harness).await;
    harness
        .service
        .end_session(&principal, other.session_id, &from)
        .await
        .expect("ended");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "session.ended",
            actor: Some(alice.id),
            subject: Some(alice.id),
            client: &from,
            details: json!({"session_id": other.session_id.to_string(), "reason": "ended_by_user"}),
        },
    );
    let again = harness
        .service
        .end_session(&principal, other.session_id, &from)
        .await;
    assert!(matches!(again, Err(AuthError::NotFound)), "{again:?}");
    assert_eq!(appended(&harness, before).await.len(), 1);
}

#[tokio::test]
async fn changes_by_the_owner_are_recorded_and_a_wrong_current_password_appends_nothing() {
    let harness = Harness::new();
    let alice = account(&harness, "alice", Role::User).await;
    let (_, principal) = signed_in(&harness, "alice").await;
    let from = client(12);
    let own = |event, details| Expected {
        event,
        actor: Some(alice.id),
        subject: Some(alice.id),
        client: &from,
        details,
    };

    let before = mark(&harness).await;
    let wrong = harness
        .service
        .change_password(
            &principal,
            PasswordChangeRequest {
                current_password: Password::new("not my password at all".to_owned()),
                new_password: Password::new(NEW_PASSWORD.to_owned()),
            },
            &from,
        )
        .await;
    assert!(matches!(wrong, Err(AuthError::Validation(_))), "{wrong:?}");
    assert_nothing_appended(&harness, before).await;

    harness
        .service
        .change_password(
            &principal,
            PasswordChangeRequest {
                current_password: Password::new(PASSWORD.to_owned()),
                new_password: Password::new(NEW_PASSWORD.to_owned()),
            },
            &from,
        )
        .await
        .expect("changed");
    check(
        &one_appended(&harness, before).await,
        own("password.changed", json!({})),
    );

    let before = mark(&harness).await;
    harness
        .service
        .update_profile(
            &principal,
            ProfileUpdateRequest {
                email: Some("alice@elsewhere.example".to_owned()),
                full_name: None,
                current_password: Some(Password::new(NEW_PASSWORD.to_owned())),
            },
            &from,
        )
        .await
        .expect("email changed");
    check(
        &one_appended(&harness, before).await,
        own(
            "profile.updated",
            json!({"email": true, "full_name": false}),
        ),
    );

    let before = mark(&harness).await;
    harness
        .service
        .update_profile(
            &principal,
            ProfileUpdateRequest {
                full_name: Some(Some("Alice A.".to_owned())),
                ..ProfileUpdateRequest::default()
            },
            &from,
        )
        .await
        .expect("renamed");
    check(
        &one_appended(&harness, before).await,
        own(
            "profile.updated",
            json!({"email": false, "full_name": true}),
        ),
    );

    let before = mark(&harness).await;
    let wrong = harness
        .service
        .delete_account(&principal, &Password::new(PASSWORD.to_owned()), &from)
        .await;
    assert!(matches!(wrong, Err(AuthError::Validation(_))), "{wrong:?}");
    assert_nothing_appended(&harness, before).await;
    harness
        .service
        .delete_account(&principal, &Password::new(NEW_PASSWORD.to_owned()), &from)
        .await
        .expect("deleted");
    check(
        &one_appended(&harness, before).await,
        own("account.deleted", json!({})),
    );
}

#[tokio::test]
async fn an_administrators_changes_are_recorded_with_the_administrator_as_actor() {
    let harness = Harness::new();
    let root = account(&harness, "root", Role::Admin).await;
    let alice = account(&harness, "alice", Role::User).await;
    let (_, admin) = signed_in(&harness, "root").await;
    let from = client(13);
    let by_admin = Initiator::caller(&admin, &from);
    let about_alice = |event, details| Expected {
        event,
        actor: Some(root.id),
        subject: Some(alice.id),
        client: &from,
        details,
    };

    let before = mark(&harness).await;
    harness
        .service
        .admin_update_user(
            alice.id,
            AdminUserUpdate {
                roles: Some(vec!["user".to_owned(), "admin".to_owned()]),
                disabled: Some(true),
                ..AdminUserUpdate::default()
            },
            &by_admin,
        )
        .await
        .expect("updated");
    check(
        &one_appended(&harness, before).await,
        about_alice(
            "user.updated_by_admin",
            json!({"role": "admin", "disabled": true, "email": false, "full_name": false}),
        ),
    );

    let before = mark(&harness).await;
    harness
        .service
        .admin_update_user(
            alice.id,
            AdminUserUpdate {
                email: Some("alice@elsewhere.example".to_owned()),
                full_name: Some(None),
                ..AdminUserUpdate::default()
            },
            &by_admin,
        )
        .await
        .expect("updated");
    check(
        &one_appended(&harness, before).await,
        about_alice(
            "user.updated_by_admin",
            json!({"email": true, "full_name": true}),
        ),
    );

    // Refused: alice is disabled, so root is the last enabled admin.
    let before = mark(&harness).await;
    let refused = harness.service.admin_delete_user(root.id, &by_admin).await;
    assert!(matches!(refused, Err(AuthError::LastAdmin)), "{refused:?}");
    let refused = harness
        .service
        .admin_update_user(
            root.id,
            AdminUserUpdate {
                disabled: Some(true),
                ..AdminUserUpdate::default()
            },
            &by_admin,
        )
        .await;
    assert!(matches!(refused, Err(AuthError::LastAdmin)), "{refused:?}");
    assert_nothing_appended(&harness, before).await;

    harness
        .service
        .admin_delete_user(alice.id, &by_admin)
        .await
        .expect("deleted");
    check(
        &one_appended(&harness, before).await,
        about_alice("account.deleted", json!({})),
    );
    let before = mark(&harness).await;
    let gone = harness.service.admin_delete_user(alice.id, &by_admin).await;
    assert!(matches!(gone, Err(AuthError::NotFound)), "{gone:?}");
    assert_nothing_appended(&harness, before).await;
}

#[tokio::test]
async fn command_line_changes_have_no_actor_and_name_the_account_changed() {
    let harness = Harness::new();
    let alice = account(&harness, "alice", Role::User).await;
    let cli = Initiator::command_line();
    let none = ClientInfo::default();

    let before = mark(&harness).await;
    harness
        .service
        .set_disabled("Alice", true, &cli)
        .await
        .expect("disabled");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "user.updated_by_admin",
            actor: None,
            subject: Some(alice.id),
            client: &none,
            details: json!({"disabled": true, "email": false, "full_name": false}),
        },
    );

    let before = mark(&harness).await;
    harness
        .service
        .set_role("alice", Role::Admin, &cli)
        .await
        .expect("promoted");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "user.updated_by_admin",
            actor: None,
            subject: Some(alice.id),
            client: &none,
            details: json!({"role": "admin", "email": false, "full_name": false}),
        },
    );

    let before = mark(&harness).await;
    let unknown = harness.service.set_disabled("nobody", true, &cli).await;
    assert!(matches!(unknown, Err(AuthError::NotFound)), "{unknown:?}");
    let unknown = harness.service.set_role("nobody", Role::User, &cli).await;
    assert!(matches!(unknown, Err(AuthError::NotFound)), "{unknown:?}");
    assert_nothing_appended(&harness, before).await;
}

#[tokio::test]
async fn api_keys_are_recorded_with_their_id_name_and_scopes() {
    let harness = Harness::new();
    let root = account(&harness, "root", Role::Admin).await;
    let (_, admin) = signed_in(&harness, "root").await;
    let from = client(14);

    let before = mark(&harness).await;
    let (info, _key) = harness
        .service
        .create_api_key(
            &admin,
            ApiKeyRequest {
                name: "deploy bot".to_owned(),
                scopes: Some(vec!["profile".to_owned()]),
                expires_in_days: Some(30),
            },
            &from,
        )
        .await
        .expect("created");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "api_key.created",
            actor: Some(root.id),
            subject: Some(root.id),
            client: &from,
            details: json!({"key_id": info.id.to_string(), "name": "deploy bot", "scopes": "profile"}),
        },
    );

    let before = mark(&harness).await;
    harness
        .service
        .revoke_api_key(&admin, info.id, &from)
        .await
        .expect("revoked");
    check(
        &one_appended(&harness, before).await,
        Expected {
            event: "api_key.revoked",
            actor: Some(root.id),
            subject: Some(root.id),
            client: &from,
            details: json!({"key_id": info.id.to_string()}),
        },
    );
    let before = mark(&harness).await;
    let again = harness.service.revoke_api_key(&admin, info.id, &from).await;
    assert!(matches!(again, Err(AuthError::NotFound)), "{again:?}");
    assert_nothing_appended(&harness, before).await;
}

#[tokio::test]
async fn no_event_holds_a_password_a_token_or_a_key() {
    let harness = Harness::new();
    let from = client(15);
    // An unknown username that is really a password typed into the wrong
    // field must not be kept either.
    let misplaced = "hunter2isnotmyname";
    let refresh = |token: &str| RefreshRequest {
        refresh_token: token.to_owned(),
        scope: None,
        client: from.clone(),
    };
    harness
        .service
        .register(registration("alice"), &from)
        .await
        .expect("registered");
    for (username, password) in [(misplaced, PASSWORD), ("alice", "wrong password!!")] {
        let failed = harness
            .service
            .login(login_request(username, password, &from))
            .await;
        assert!(matches!(failed, Err(AuthError::InvalidGrant)), "{failed:?}");
    }
    let (first, principal) = signed_in(&harness, "alice").await;
    let rotated = harness
        .service
        .refresh(refresh(&first.refresh_token))
        .await
        .expect("rotated");
    let replayed = harness.service.refresh(refresh(&first.refresh_token)).await;
    assert!(
        matches!(replayed, Err(AuthError::InvalidGrant)),
        "{replayed:?}"
    );
    let (info, key) = harness
        .service
        .create_api_key(
            &principal,
            ApiKeyRequest {
                name: "ci".to_owned(),
                scopes: None,
                expires_in_days: None,
            },
            &from,
        )
        .await
        .expect("created");
    let revoked = login(&harness, "alice", &from).await;
    harness
        .service
        .revoke_token(&revoked.refresh_token, None, &from)
        .await
        .expect("revoked");
    let (last, principal) = signed_in(&harness, "alice").await;
    harness
        .service
        .change_password(
            &principal,
            PasswordChangeRequest {
                current_password: Password::new(PASSWORD.to_owned()),
                new_password: Password::new(NEW_PASSWORD.to_owned()),
            },
            &from,
        )
        .await
        .expect("changed");
    harness
        .service
        .revoke_api_key(&principal, info.id, &from)
        .await
        .expect("revoked");
    let basic = harness
        .service
        .authenticate_basic("alice", &Password::new(PASSWORD.to_owned()), &from)
        .await;
    assert!(matches!(basic, Err(AuthError::InvalidToken)), "{basic:?}");
    harness
        .service
        .logout(&principal, LogoutScope::Global, &from)
        .await
        .expect("logout");
    harness
        .service
        .delete_account(&principal, &Password::new(NEW_PASSWORD.to_owned()), &from)
        .await
        .expect("deleted");

    let mut secrets = vec![
        PASSWORD.to_owned(),
        NEW_PASSWORD.to_owned(),
        misplaced.to_owned(),
        key,
    ];
    for grant in [first, rotated, revoked, last] {
        secrets.push(grant.refresh_token);
        secrets.push(grant.access_token);
    }
    let listed = events(&harness).await;
    let names: Vec<&str> = listed.iter().map(|entry| entry.event.as_str()).collect();
    for name in [
        "user.registered",
        "login.failed",
        "login.succeeded",
        "refresh_token.reused",
        "api_key.created",
        "session.ended",
        "password.changed",
        "api_key.revoked",
        "sessions.ended",
        "account.deleted",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for entry in &listed {
        // Every field, details included, as stored.
        let stored = format!("{entry:?}");
        for secret in &secrets {
            assert!(
                !stored.contains(secret.as_str()) && !entry.details.contains(secret.as_str()),
                "{secret:?} is in {entry:#?}"
            );
        }
    }
}

#[tokio::test]
async fn own_events_are_the_visible_ones_about_the_caller_newest_first() {
    let harness = Harness::new();
    account(&harness, "root", Role::Admin).await;
    let alice = account(&harness, "alice", Role::User).await;
    let bob = account(&harness, "bob", Role::User).await;
    let (_, admin) = signed_in(&harness, "root").await;
    let (_, me) = signed_in(&harness, "alice").await;
    let _ = harness
        .service
        .login(login_request("alice", "wrong password!!", &client(16)))
        .await;
    harness
        .service
        .update_profile(
            &me,
            ProfileUpdateRequest {
                full_name: Some(Some("Alice A.".to_owned())),
                ..ProfileUpdateRequest::default()
            },
            &client(16),
        )
        .await
        .expect("renamed");
    harness
        .service
        .create_api_key(
            &me,
            ApiKeyRequest {
                name: "ci".to_owned(),
                scopes: None,
                expires_in_days: None,
            },
            &client(16),
        )
        .await
        .expect("created");
    harness
        .service
        .admin_update_user(
            alice.id,
            AdminUserUpdate {
                full_name: Some(None),
                ..AdminUserUpdate::default()
            },
            &Initiator::caller(&admin, &client(17)),
        )
        .await
        .expect("updated");
    // Bob's activity, interleaved.
    let (_, bob_principal) = signed_in(&harness, "bob").await;
    let _ = harness
        .service
        .login(login_request("bob", "wrong password!!", &client(18)))
        .await;
    harness
        .service
        .logout(&bob_principal, LogoutScope::Local, &client(18))
        .await
        .expect("logout");

    let mine = harness
        .service
        .list_own_events(&me, PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(mine.next, None);
    let names: Vec<&str> = mine
        .items
        .iter()
        .map(|entry| entry.event.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "user.updated_by_admin",
            "api_key.created",
            "profile.updated",
            "login.failed",
            "login.succeeded",
        ],
        "{mine:#?}"
    );
    for entry in &mine.items {
        assert!(
            USER_VISIBLE_EVENTS.contains(&entry.event.as_str()),
            "{entry:#?}"
        );
        assert_eq!(entry.subject_id, Some(alice.id), "{entry:#?}");
        assert_ne!(entry.actor_id, Some(bob.id), "{entry:#?}");
    }
    assert!(
        mine.items.windows(2).all(|pair| pair[0].seq > pair[1].seq),
        "newest first: {mine:#?}"
    );

    // The same events, a page at a time.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = harness
            .service
            .list_own_events(&me, PageRequest { limit: 2, after })
            .await
            .expect("page");
        assert!(page.items.len() <= 2);
        paged.extend(page.items);
        match page.next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(paged, mine.items);

    let theirs = harness
        .service
        .list_own_events(&bob_principal, PageRequest::default())
        .await
        .expect("listed");
    assert!(
        theirs
            .items
            .iter()
            .all(|entry| entry.subject_id == Some(bob.id)),
        "{theirs:#?}"
    );
    assert_eq!(theirs.items.len(), 3, "{theirs:#?}");
}

/// An administrator's own activity is about her account: what she changed
/// on someone else's account is that account's event, not hers.
#[tokio::test]
async fn an_administrators_own_events_leave_out_what_she_did_to_other_accounts() {
    let harness = Harness::new();
    let root = account(&harness, "root", Role::Admin).await;
    let alice = account(&harness, "alice", Role::User).await;
    let (_, admin) = signed_in(&harness, "root").await;
    harness
        .service
        .admin_update_user(
            alice.id,
            AdminUserUpdate {
                disabled: Some(true),
                ..AdminUserUpdate::default()
            },
            &Initiator::caller(&admin, &client(19)),
        )
        .await
        .expect("disabled");

    let mine = harness
        .service
        .list_own_events(&admin, PageRequest::default())
        .await
        .expect("listed");
    assert!(
        mine.items
            .iter()
            .all(|entry| entry.subject_id == Some(root.id)),
        "{mine:#?}"
    );
}

#[tokio::test]
async fn the_admin_listing_filters_and_refuses_unknown_names_and_inverted_ranges() {
    let harness = Harness::new();
    let alice = account(&harness, "alice", Role::User).await;
    account(&harness, "bob", Role::User).await;
    for username in ["alice", "bob", "nobody"] {
        let _ = harness
            .service
            .login(login_request(username, "wrong password!!", &client(20)))
            .await;
    }

    let Err(AuthError::Validation(errors)) = harness
        .service
        .list_audit_events(AuditListRequest {
            event: Some("login.exploded".to_owned()),
            ..AuditListRequest::default()
        })
        .await
    else {
        panic!("an unknown event name must be refused");
    };
    assert_eq!(
        errors.iter().map(|error| error.field).collect::<Vec<_>>(),
        ["event"]
    );

    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
    let Err(AuthError::Validation(errors)) = harness
        .service
        .list_audit_events(AuditListRequest {
            since: Some(now),
            until: Some(now - time::Duration::seconds(1)),
            ..AuditListRequest::default()
        })
        .await
    else {
        panic!("since after until must be refused");
    };
    assert_eq!(
        errors.iter().map(|error| error.field).collect::<Vec<_>>(),
        ["until"]
    );

    let failed = harness
        .service
        .list_audit_events(AuditListRequest {
            event: Some("login.failed".to_owned()),
            ..AuditListRequest::default()
        })
        .await
        .expect("listed");
    assert_eq!(failed.items.len(), 3, "{failed:#?}");
    let alices = harness
        .service
        .list_audit_events(AuditListRequest {
            user: Some(alice.id),
            event: Some("login.failed".to_owned()),
            since: Some(now),
            until: Some(now + time::Duration::seconds(1)),
            ..AuditListRequest::default()
        })
        .await
        .expect("listed");
    assert_eq!(alices.items.len(), 1, "{alices:#?}");
    assert_eq!(alices.items[0].subject_id, Some(alice.id));
    let later = harness
        .service
        .list_audit_events(AuditListRequest {
            since: Some(now + time::Duration::seconds(1)),
            ..AuditListRequest::default()
        })
        .await
        .expect("listed");
    assert!(later.items.is_empty(), "{later:#?}");
}

#[tokio::test]
async fn pruning_deletes_the_events_past_the_retention_and_the_rest_still_verifies() {
    const DAY: Duration = Duration::from_secs(86_400);
    let harness = Harness::new();
    account(&harness, "alice", Role::User).await;
    login(&harness, "alice", &client(21)).await;
    let old = mark(&harness).await;
    assert_eq!(old, 2);

    harness.clock.advance(10 * DAY);
    let (_, principal) = signed_in(&harness, "alice").await;
    harness
        .service
        .logout(&principal, LogoutScope::Local, &client(21))
        .await
        .expect("logout");
    let kept = mark(&harness).await - old;
    assert_eq!(kept, 2);

    // Nothing is older than 30 days yet.
    assert_eq!(
        harness
            .service
            .prune_audit_log(30 * DAY)
            .await
            .expect("pruned"),
        0
    );
    assert_eq!(
        mark(&harness).await,
        old + kept,
        "nothing pruned, nothing appended"
    );

    assert_eq!(
        harness
            .service
            .prune_audit_log(5 * DAY)
            .await
            .expect("pruned"),
        old
    );
    let left = events(&harness).await;
    assert_eq!(
        left.iter().map(|entry| entry.seq).collect::<Vec<_>>(),
        (old + 1..=old + kept + 1).collect::<Vec<_>>()
    );
    check(
        left.last().expect("the pruning's own event"),
        Expected {
            event: "audit.pruned",
            actor: None,
            subject: None,
            client: &ClientInfo::default(),
            details: json!({"through_seq": old, "count": old}),
        },
    );

    let report = verify_store(&*harness.store, &TestAuditKey)
        .await
        .expect("read")
        .expect("the pruned chain verifies");
    assert_eq!(report.starts_after, old);
    assert_eq!(report.events, kept + 1);
    assert_eq!(report.head.map(|head| head.seq), Some(old + kept + 1));
}
