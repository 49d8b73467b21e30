//! The use-case side of the attack review (issue 18): re-authentication
//! for an email change, caps and rate limits on credentials, and a store
//! that cannot write refusing before any hash is spent.

use std::sync::atomic::Ordering;

use portcullis_domain::{
    ApiKeyRequest, AuthError, ClientInfo, Initiator, LoginRequest, PageCursor, PageRequest,
    Password, Principal, ProfileUpdateRequest, RegistrationRequest, Role,
};

use crate::fakes::Harness;

const PASSWORD: &str = "correct horse battery staple";

async fn register(harness: &Harness, username: &str) {
    harness
        .service
        .create_user(
            RegistrationRequest {
                username: username.to_owned(),
                email: format!("{username}@example.com"),
                full_name: None,
                password: Password::new(PASSWORD.to_owned()),
            },
            Role::User,
            &Initiator::command_line(),
        )
        .await
        .expect("registered");
}

fn login_request(username: &str) -> LoginRequest {
    LoginRequest {
        username: username.to_owned(),
        password: Password::new(PASSWORD.to_owned()),
        scope: None,
        client: ClientInfo::default(),
    }
}

async fn principal(harness: &Harness, username: &str) -> Principal {
    let grant = harness
        .service
        .login(login_request(username))
        .await
        .expect("login");
    harness
        .service
        .authenticate_access_token(&grant.access_token)
        .await
        .expect("valid")
}

fn email_change(current_password: Option<&str>) -> ProfileUpdateRequest {
    ProfileUpdateRequest {
        email: Some("changed@example.com".to_owned()),
        full_name: None,
        current_password: current_password.map(|p| Password::new(p.to_owned())),
    }
}

fn fields(error: &AuthError) -> Vec<(&'static str, String)> {
    match error {
        AuthError::Validation(errors) => errors
            .iter()
            .map(|error| (error.field, error.message.clone()))
            .collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_email_change_without_the_current_password_is_refused_before_any_check() {
    let harness = Harness::new();
    register(&harness, "mover").await;
    let mover = principal(&harness, "mover").await;
    let verifications = harness.hasher.verifications.load(Ordering::SeqCst);

    let error = harness
        .service
        .update_profile(&mover, email_change(None), &ClientInfo::default())
        .await
        .expect_err("refused");

    assert_eq!(
        fields(&error),
        [(
            "current_password",
            "is required to change the email".to_owned()
        )]
    );
    assert_eq!(
        harness.hasher.verifications.load(Ordering::SeqCst),
        verifications
    );
}

#[tokio::test]
async fn an_email_change_with_a_wrong_password_is_a_validation_error_on_current_password() {
    let harness = Harness::new();
    register(&harness, "mover").await;
    let mover = principal(&harness, "mover").await;

    let error = harness
        .service
        .update_profile(
            &mover,
            email_change(Some("not the password at all")),
            &ClientInfo::default(),
        )
        .await
        .expect_err("refused");

    assert_eq!(
        fields(&error),
        [("current_password", "is incorrect".to_owned())]
    );
    let stored = harness.service.get_user(mover.user.id).await.expect("user");
    assert_eq!(stored.email.as_str(), "mover@example.com", "unchanged");
}

#[tokio::test]
async fn an_email_change_over_the_attempt_limit_is_rate_limited_without_hashing() {
    let harness = Harness::new();
    register(&harness, "mover").await;
    let mover = principal(&harness, "mover").await;
    // The login spent one attempt of the username's budget.
    *harness.limiter.budget.lock().expect("lock") = Some(1);
    let verifications = harness.hasher.verifications.load(Ordering::SeqCst);

    let error = harness
        .service
        .update_profile(&mover, email_change(Some(PASSWORD)), &ClientInfo::default())
        .await
        .expect_err("limited");

    assert!(matches!(error, AuthError::RateLimited { .. }), "{error:?}");
    assert_eq!(
        harness.hasher.verifications.load(Ordering::SeqCst),
        verifications,
        "no hash was computed"
    );
}

#[tokio::test]
async fn an_email_change_with_the_right_password_is_applied_and_a_name_change_needs_none() {
    let harness = Harness::new();
    register(&harness, "mover").await;
    let mover = principal(&harness, "mover").await;

    let user = harness
        .service
        .update_profile(&mover, email_change(Some(PASSWORD)), &ClientInfo::default())
        .await
        .expect("changed");
    assert_eq!(user.email.as_str(), "changed@example.com");

    let user = harness
        .service
        .update_profile(
            &mover,
            ProfileUpdateRequest {
                full_name: Some(Some("Mo Ver".to_owned())),
                ..ProfileUpdateRequest::default()
            },
            &ClientInfo::default(),
        )
        .await
        .expect("renamed");
    assert_eq!(
        user.full_name.map(|n| n.as_str().to_owned()).as_deref(),
        Some("Mo Ver")
    );
}

#[tokio::test]
async fn a_store_that_cannot_write_refuses_registration_and_login_before_any_hash() {
    let harness = Harness::new();
    register(&harness, "early").await;
    harness.store.write_locked.store(true, Ordering::SeqCst);
    let hashes = harness.hasher.hashes.load(Ordering::SeqCst);
    let verifications = harness.hasher.verifications.load(Ordering::SeqCst);

    let registration = harness
        .service
        .register(
            RegistrationRequest {
                username: "late".to_owned(),
                email: "late@example.com".to_owned(),
                full_name: None,
                password: Password::new(PASSWORD.to_owned()),
            },
            &ClientInfo::default(),
        )
        .await;
    let login = harness.service.login(login_request("early")).await;
    let health = harness.service.check_health().await;

    assert!(
        matches!(registration, Err(AuthError::Unavailable(_))),
        "{registration:?}"
    );
    assert!(matches!(login, Err(AuthError::Unavailable(_))), "{login:?}");
    assert!(
        matches!(health, Err(AuthError::Unavailable(_))),
        "{health:?}"
    );
    assert_eq!(harness.hasher.hashes.load(Ordering::SeqCst), hashes);
    assert_eq!(
        harness.hasher.verifications.load(Ordering::SeqCst),
        verifications
    );

    harness.store.write_locked.store(false, Ordering::SeqCst);
    harness
        .service
        .login(login_request("early"))
        .await
        .expect("works again");
}

fn key_request() -> ApiKeyRequest {
    ApiKeyRequest {
        name: "ci".to_owned(),
        scopes: None,
        expires_in_days: None,
    }
}

#[tokio::test]
async fn creating_a_key_beyond_the_cap_is_refused_until_one_is_revoked() {
    // The harness allows three live keys per user.
    let harness = Harness::new();
    register(&harness, "keeper").await;
    let keeper = principal(&harness, "keeper").await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(
            harness
                .service
                .create_api_key(&keeper, key_request(), &ClientInfo::default())
                .await
                .expect("within the cap")
                .0,
        );
    }

    let refused = harness
        .service
        .create_api_key(&keeper, key_request(), &ClientInfo::default())
        .await;
    assert!(
        matches!(refused, Err(AuthError::ApiKeyLimitReached)),
        "{refused:?}"
    );
    harness
        .service
        .revoke_api_key(&keeper, made[0].id, &ClientInfo::default())
        .await
        .expect("revoke");
    harness
        .service
        .create_api_key(&keeper, key_request(), &ClientInfo::default())
        .await
        .expect("room again");
}

#[tokio::test]
async fn key_creations_over_the_per_user_budget_are_rate_limited_before_anything_is_stored() {
    let harness = Harness::new();
    register(&harness, "minter").await;
    let minter = principal(&harness, "minter").await;
    *harness.limiter.creation_budget.lock().expect("lock") = Some(1);
    harness
        .service
        .create_api_key(&minter, key_request(), &ClientInfo::default())
        .await
        .expect("first");

    let refused = harness
        .service
        .create_api_key(&minter, key_request(), &ClientInfo::default())
        .await;

    assert!(
        matches!(
            refused,
            Err(AuthError::RateLimited {
                retry_after_secs: 3
            })
        ),
        "{refused:?}"
    );
    let keys = harness
        .service
        .list_api_keys(&minter, PageRequest::default())
        .await
        .expect("list");
    assert_eq!(keys.items.len(), 1);
}

#[tokio::test]
async fn a_key_request_that_cannot_be_valid_spends_no_creation_budget() {
    let harness = Harness::new();
    register(&harness, "typo").await;
    let typo = principal(&harness, "typo").await;
    *harness.limiter.creation_budget.lock().expect("lock") = Some(1);
    let invalid = harness
        .service
        .create_api_key(
            &typo,
            ApiKeyRequest {
                name: "ci".to_owned(),
                scopes: Some(vec!["profile admin".to_owned()]),
                expires_in_days: None,
            },
            &ClientInfo::default(),
        )
        .await;
    assert!(
        matches!(&invalid, Err(AuthError::Validation(errors)) if errors[0].field == "scopes"),
        "{invalid:?}"
    );

    harness
        .service
        .create_api_key(&typo, key_request(), &ClientInfo::default())
        .await
        .expect("the budget is still whole");
}

#[tokio::test]
async fn a_login_beyond_the_session_cap_ends_the_least_recently_used_session() {
    // The harness allows three active sessions per user.
    let harness = Harness::new();
    register(&harness, "roamer").await;
    let first = principal(&harness, "roamer").await;
    for _ in 0..3 {
        harness.clock.advance(std::time::Duration::from_secs(60));
        principal(&harness, "roamer").await;
    }

    let latest = principal(&harness, "roamer").await;
    let listed = harness
        .service
        .list_sessions(&latest, PageRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 3);
    assert!(
        listed
            .items
            .iter()
            .all(|session| Some(session.id) != first.session_id()),
        "the least recently used session ended"
    );
}

#[tokio::test]
async fn a_garbled_cursor_is_a_validation_error_on_cursor() {
    let harness = Harness::new();
    register(&harness, "pager").await;
    let pager = principal(&harness, "pager").await;

    let refused = harness
        .service
        .list_api_keys(
            &pager,
            PageRequest {
                limit: 10,
                after: Some(PageCursor::new("garbled")),
            },
        )
        .await
        .expect_err("refused");

    assert_eq!(
        fields(&refused),
        [(
            "cursor",
            "is not a cursor returned by this endpoint".to_owned()
        )]
    );
}
