use std::time::Duration;

use portcullis_domain::{
    AuthError, ClientInfo, Initiator, LoginRequest, Password, RegistrationRequest, Role, Scope,
};

use crate::fakes::Harness;

const PASSWORD: &str = "correct horse battery staple";

async fn admin_token(harness: &Harness) -> String {
    harness
        .service
        .create_user(
            RegistrationRequest {
                username: "root".to_owned(),
                email: "root@example.com".to_owned(),
                full_name: None,
                password: Password::new(PASSWORD.to_owned()),
            },
            Role::Admin,
            &Initiator::command_line(),
        )
        .await
        .expect("registered");
    harness
        .service
        .login(LoginRequest {
            username: "root".to_owned(),
            password: Password::new(PASSWORD.to_owned()),
            scope: None,
            client: ClientInfo::default(),
        })
        .await
        .expect("login")
        .access_token
}

#[tokio::test]
async fn a_token_authenticates_its_user_with_its_scopes() {
    let harness = Harness::new();
    let token = admin_token(&harness).await;
    let principal = harness
        .service
        .authenticate_access_token(&token)
        .await
        .expect("valid");
    assert_eq!(principal.user.username.as_str(), "root");
    assert!(principal.require(Scope::Admin).is_ok());
}

#[tokio::test]
async fn demoting_an_admin_removes_the_admin_scope_from_live_tokens() {
    let harness = Harness::new();
    let token = admin_token(&harness).await;
    harness
        .service
        .set_role("root", Role::User, &Initiator::command_line())
        .await
        .expect("demoted");
    let principal = harness
        .service
        .authenticate_access_token(&token)
        .await
        .expect("valid");
    assert!(matches!(
        principal.require(Scope::Admin),
        Err(AuthError::InsufficientScope(Scope::Admin))
    ));
    assert!(principal.require(Scope::Profile).is_ok());
}

#[tokio::test]
async fn disabling_the_user_refuses_the_token_on_the_next_request() {
    let harness = Harness::new();
    let token = admin_token(&harness).await;
    harness
        .service
        .set_disabled("root", true, &Initiator::command_line())
        .await
        .expect("disabled");
    let result = harness.service.authenticate_access_token(&token).await;
    assert!(matches!(result, Err(AuthError::InvalidToken)));
}

#[tokio::test]
async fn an_idle_session_stops_authenticating_even_with_an_unexpired_token() {
    let harness = Harness::new();
    let token = admin_token(&harness).await;
    // Within the access-token lifetime but past the 30-minute idle timeout
    // the harness configures: only possible because the session is checked.
    harness.clock.advance(Duration::from_secs(600));
    assert!(
        harness
            .service
            .authenticate_access_token(&token)
            .await
            .is_ok()
    );
    harness.clock.advance(Duration::from_secs(1300));
    let result = harness.service.authenticate_access_token(&token).await;
    assert!(matches!(result, Err(AuthError::InvalidToken)), "{result:?}");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let harness = Harness::new();
    let token = admin_token(&harness).await;
    harness.clock.advance(Duration::from_secs(901));
    let result = harness.service.authenticate_access_token(&token).await;
    assert!(matches!(result, Err(AuthError::InvalidToken)));
}
