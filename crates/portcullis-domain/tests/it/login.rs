use std::sync::atomic::Ordering;

use portcullis_domain::{
    AuthError, ClientInfo, Initiator, LoginRequest, Password, RegistrationRequest, Role, Scope,
    ScopeSet,
};

use crate::fakes::Harness;

const PASSWORD: &str = "correct horse battery staple";

async fn register(harness: &Harness, username: &str, role: Role) {
    harness
        .service
        .create_user(
            RegistrationRequest {
                username: username.to_owned(),
                email: format!("{username}@example.com"),
                full_name: None,
                password: Password::new(PASSWORD.to_owned()),
            },
            role,
            &Initiator::command_line(),
        )
        .await
        .expect("registered");
}

fn login(username: &str, password: &str, scope: Option<&str>) -> LoginRequest {
    LoginRequest {
        username: username.to_owned(),
        password: Password::new(password.to_owned()),
        scope: scope.map(str::to_owned),
        client: ClientInfo::default(),
    }
}

#[tokio::test]
async fn unknown_users_wrong_passwords_and_disabled_accounts_cost_one_verification_each() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    register(&harness, "bob", Role::User).await;
    harness
        .service
        .set_disabled("bob", true, &Initiator::command_line())
        .await
        .expect("disabled");

    for (username, password) in [
        ("nobody", PASSWORD),
        ("alice", "wrong password!!"),
        ("bob", PASSWORD),
        ("not a name", PASSWORD),
    ] {
        let before = harness.hasher.verifications.load(Ordering::SeqCst);
        let result = harness.service.login(login(username, password, None)).await;
        assert!(
            matches!(result, Err(AuthError::InvalidGrant)),
            "{username}: {result:?}"
        );
        let after = harness.hasher.verifications.load(Ordering::SeqCst);
        assert_eq!(
            after - before,
            1,
            "{username} must cost exactly one verification"
        );
    }
    // The two unknown names were checked against the dummy hash.
    assert_eq!(harness.hasher.dummy_verifications.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn scopes_default_to_the_role_and_can_only_narrow() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    register(&harness, "root", Role::Admin).await;

    let user = harness
        .service
        .login(login("alice", PASSWORD, None))
        .await
        .expect("login");
    assert_eq!(user.scopes, ScopeSet::EMPTY.with(Scope::Profile));
    let admin = harness
        .service
        .login(login("root", PASSWORD, None))
        .await
        .expect("login");
    assert!(admin.scopes.contains(Scope::Admin));
    let narrowed = harness
        .service
        .login(login("root", PASSWORD, Some("profile")))
        .await
        .expect("login");
    assert_eq!(narrowed.scopes, ScopeSet::EMPTY.with(Scope::Profile));

    let too_much = harness
        .service
        .login(login("alice", PASSWORD, Some("admin")))
        .await;
    assert!(matches!(too_much, Err(AuthError::InvalidScope)));
    let unknown = harness
        .service
        .login(login("alice", PASSWORD, Some("openid")))
        .await;
    assert!(matches!(unknown, Err(AuthError::InvalidScope)));
}

#[tokio::test]
async fn a_hash_made_with_old_parameters_is_replaced_at_login() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    harness
        .service
        .login(login("alice", PASSWORD, None))
        .await
        .expect("login");
    assert_eq!(harness.store.hash_updates.load(Ordering::SeqCst), 0);

    *harness.hasher.version.lock().expect("lock") = 2;
    harness
        .service
        .login(login("alice", PASSWORD, None))
        .await
        .expect("login");
    assert_eq!(harness.store.hash_updates.load(Ordering::SeqCst), 1);
    // Now current: no further rehash.
    harness
        .service
        .login(login("alice", PASSWORD, None))
        .await
        .expect("login");
    assert_eq!(harness.store.hash_updates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn over_the_attempt_limit_no_hash_is_computed_and_case_flips_share_the_budget() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    *harness.limiter.budget.lock().expect("lock") = Some(2);
    let client = ClientInfo {
        ip: Some("198.51.100.4".parse().expect("ip")),
        user_agent: None,
        request_id: None,
    };
    for username in ["alice", "ALICE"] {
        let mut request = login(username, "wrong password!!", None);
        request.client = client.clone();
        assert!(matches!(
            harness.service.login(request).await,
            Err(AuthError::InvalidGrant)
        ));
    }
    let before = harness.hasher.verifications.load(Ordering::SeqCst);
    let mut request = login("Alice", PASSWORD, None);
    request.client = client.clone();
    let result = harness.service.login(request).await;
    assert!(
        matches!(
            result,
            Err(AuthError::RateLimited {
                retry_after_secs: 2
            })
        ),
        "{result:?}"
    );
    assert_eq!(harness.hasher.verifications.load(Ordering::SeqCst), before);
    let seen = harness.limiter.seen.lock().expect("lock");
    assert!(
        seen.iter()
            .all(|(ip, name)| name == "alice" && *ip == client.ip)
    );
}

#[tokio::test]
async fn lifetimes_beyond_any_timestamp_fail_the_login_cleanly_instead_of_panicking() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use portcullis_domain::{AuthService, AuthSettings, Ports};

    use crate::fakes::PlainTokens;

    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    let tokens = Arc::new(PlainTokens {
        issued: Mutex::new(HashMap::new()),
    });
    for settings in [
        AuthSettings {
            access_token_ttl: Duration::MAX,
            ..AuthSettings::default()
        },
        AuthSettings {
            session_ttl: Duration::from_secs(u64::MAX / 2),
            ..AuthSettings::default()
        },
    ] {
        let service = AuthService::new(
            Ports {
                store: harness.store.clone(),
                hasher: harness.hasher.clone(),
                access_tokens: tokens.clone(),
                secrets: tokens.clone(),
                verifier: tokens.clone(),
                clock: harness.clock.clone(),
                limiter: harness.limiter.clone(),
            },
            settings,
        );
        let result = service.login(login("alice", PASSWORD, None)).await;
        assert!(matches!(result, Err(AuthError::Internal(_))), "{result:?}");
    }
}
