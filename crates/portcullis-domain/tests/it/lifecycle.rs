use std::time::Duration;

use portcullis_domain::{
    AuthError, ClientInfo, Initiator, LoginRequest, LogoutScope, Password, PasswordChangeRequest,
    RefreshRequest, RegistrationRequest, Role, Scope, TokenGrant, TokenTypeHint,
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

async fn login(harness: &Harness, username: &str) -> TokenGrant {
    harness
        .service
        .login(LoginRequest {
            username: username.to_owned(),
            password: Password::new(PASSWORD.to_owned()),
            scope: None,
            client: ClientInfo::default(),
        })
        .await
        .expect("login")
}

async fn refresh(
    harness: &Harness,
    token: &str,
    scope: Option<&str>,
) -> Result<TokenGrant, AuthError> {
    harness
        .service
        .refresh(RefreshRequest {
            refresh_token: token.to_owned(),
            scope: scope.map(str::to_owned),
            client: ClientInfo::default(),
        })
        .await
}

async fn is_authenticated(harness: &Harness, access_token: &str) -> bool {
    harness
        .service
        .authenticate_access_token(access_token)
        .await
        .is_ok()
}

#[tokio::test]
async fn refreshing_rotates_the_token_within_the_same_session() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    let first = login(&harness, "alice").await;
    let second = refresh(&harness, &first.refresh_token, None)
        .await
        .expect("refreshed");
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert!(is_authenticated(&harness, &second.access_token).await);
}

#[tokio::test]
async fn replaying_a_rotated_token_ends_the_whole_session() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    let first = login(&harness, "alice").await;
    let second = refresh(&harness, &first.refresh_token, None)
        .await
        .expect("refreshed");
    let replay = refresh(&harness, &first.refresh_token, None).await;
    assert!(matches!(replay, Err(AuthError::InvalidGrant)));
    // The thief's replay also kills the legitimate holder's newer tokens.
    assert!(matches!(
        refresh(&harness, &second.refresh_token, None).await,
        Err(AuthError::InvalidGrant)
    ));
    assert!(!is_authenticated(&harness, &second.access_token).await);
}

#[tokio::test]
async fn a_refresh_scope_can_narrow_but_never_widen() {
    let harness = Harness::new();
    register(&harness, "root", Role::Admin).await;
    register(&harness, "alice", Role::User).await;
    let admin = login(&harness, "root").await;
    let narrowed = refresh(&harness, &admin.refresh_token, Some("profile"))
        .await
        .expect("narrowed");
    assert!(!narrowed.scopes.contains(Scope::Admin));
    // Without a scope the session's full grant comes back.
    let full = refresh(&harness, &narrowed.refresh_token, None)
        .await
        .expect("full");
    assert!(full.scopes.contains(Scope::Admin));

    let user = login(&harness, "alice").await;
    let widened = refresh(&harness, &user.refresh_token, Some("admin")).await;
    assert!(matches!(widened, Err(AuthError::InvalidScope)));
    // The refused request did not consume the token.
    assert!(refresh(&harness, &user.refresh_token, None).await.is_ok());
}

#[tokio::test]
async fn an_idle_session_cannot_be_refreshed() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    let grant = login(&harness, "alice").await;
    harness.clock.advance(Duration::from_secs(1801));
    assert!(matches!(
        refresh(&harness, &grant.refresh_token, None).await,
        Err(AuthError::InvalidGrant)
    ));
}

#[tokio::test]
async fn revoking_either_token_ends_the_session_and_unknown_tokens_are_fine() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    let by_refresh = login(&harness, "alice").await;
    harness
        .service
        .revoke_token(
            &by_refresh.refresh_token,
            Some(TokenTypeHint::AccessToken),
            &ClientInfo::default(),
        )
        .await
        .expect("revoked");
    assert!(!is_authenticated(&harness, &by_refresh.access_token).await);

    let by_access = login(&harness, "alice").await;
    harness
        .service
        .revoke_token(&by_access.access_token, None, &ClientInfo::default())
        .await
        .expect("revoked");
    assert!(
        refresh(&harness, &by_access.refresh_token, None)
            .await
            .is_err()
    );

    for junk in ["", "nonsense", "a.b.c"] {
        assert!(
            harness
                .service
                .revoke_token(junk, None, &ClientInfo::default())
                .await
                .is_ok()
        );
    }
}

#[tokio::test]
async fn logout_scopes_end_this_all_or_other_sessions() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    let sessions = [
        login(&harness, "alice").await,
        login(&harness, "alice").await,
        login(&harness, "alice").await,
    ];
    let principal = harness
        .service
        .authenticate_access_token(&sessions[0].access_token)
        .await
        .expect("valid");
    harness
        .service
        .logout(&principal, LogoutScope::Others, &ClientInfo::default())
        .await
        .expect("logout");
    assert!(is_authenticated(&harness, &sessions[0].access_token).await);
    assert!(!is_authenticated(&harness, &sessions[1].access_token).await);
    assert!(!is_authenticated(&harness, &sessions[2].access_token).await);
    harness
        .service
        .logout(&principal, LogoutScope::Local, &ClientInfo::default())
        .await
        .expect("logout");
    assert!(!is_authenticated(&harness, &sessions[0].access_token).await);
}

#[tokio::test]
async fn changing_the_password_keeps_this_session_and_ends_the_others() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    let this = login(&harness, "alice").await;
    let other = login(&harness, "alice").await;
    let principal = harness
        .service
        .authenticate_access_token(&this.access_token)
        .await
        .expect("valid");
    let wrong = harness
        .service
        .change_password(
            &principal,
            PasswordChangeRequest {
                current_password: Password::new("not my password at all".to_owned()),
                new_password: Password::new("a brand new passphrase".to_owned()),
            },
            &ClientInfo::default(),
        )
        .await;
    let Err(AuthError::Validation(errors)) = wrong else {
        panic!("expected a validation error, got {wrong:?}");
    };
    assert_eq!(errors[0].field, "current_password");
    assert!(is_authenticated(&harness, &other.access_token).await);

    harness
        .service
        .change_password(
            &principal,
            PasswordChangeRequest {
                current_password: Password::new(PASSWORD.to_owned()),
                new_password: Password::new("a brand new passphrase".to_owned()),
            },
            &ClientInfo::default(),
        )
        .await
        .expect("changed");
    assert!(is_authenticated(&harness, &this.access_token).await);
    assert!(!is_authenticated(&harness, &other.access_token).await);
}

#[tokio::test]
async fn deleting_the_account_needs_the_password_and_ends_every_credential() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    let grant = login(&harness, "alice").await;
    let principal = harness
        .service
        .authenticate_access_token(&grant.access_token)
        .await
        .expect("valid");
    let wrong = harness
        .service
        .delete_account(
            &principal,
            &Password::new("wrong wrong wrong".to_owned()),
            &ClientInfo::default(),
        )
        .await;
    assert!(matches!(wrong, Err(AuthError::Validation(_))));
    harness
        .service
        .delete_account(
            &principal,
            &Password::new(PASSWORD.to_owned()),
            &ClientInfo::default(),
        )
        .await
        .expect("deleted");
    assert!(!is_authenticated(&harness, &grant.access_token).await);
    assert!(refresh(&harness, &grant.refresh_token, None).await.is_err());
}

#[tokio::test]
async fn ending_someone_elses_session_is_not_found() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    register(&harness, "bob", Role::User).await;
    let alice = login(&harness, "alice").await;
    let bob = login(&harness, "bob").await;
    let principal = harness
        .service
        .authenticate_access_token(&alice.access_token)
        .await
        .expect("valid");
    let result = harness
        .service
        .end_session(&principal, bob.session_id, &ClientInfo::default())
        .await;
    assert!(matches!(result, Err(AuthError::NotFound)));
    assert!(is_authenticated(&harness, &bob.access_token).await);
    assert_eq!(
        harness
            .service
            .list_sessions(&principal, portcullis_domain::PageRequest::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    harness
        .service
        .end_session(&principal, alice.session_id, &ClientInfo::default())
        .await
        .expect("ended");
    assert!(!is_authenticated(&harness, &alice.access_token).await);
}

#[tokio::test]
async fn a_replayed_token_ends_the_session_whatever_scope_it_asks_for() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    for scope in ["admin", "no-such-scope"] {
        let first = login(&harness, "alice").await;
        let second = refresh(&harness, &first.refresh_token, None)
            .await
            .expect("refreshed");
        let replay = refresh(&harness, &first.refresh_token, Some(scope)).await;
        assert!(
            matches!(replay, Err(AuthError::InvalidGrant)),
            "{scope}: {replay:?}"
        );
        assert!(
            !is_authenticated(&harness, &second.access_token).await,
            "{scope}: the replay must end the session"
        );
    }
}
