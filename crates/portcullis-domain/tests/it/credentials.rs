use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis_domain::{
    AdminUserUpdate, ApiKeyRequest, AuthError, ClientInfo, Credential, Initiator, LoginRequest,
    Password, Principal, RegistrationRequest, Role, Scope, UserListQuery,
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

async fn principal(harness: &Harness, username: &str, scope: Option<&str>) -> Principal {
    let grant = harness
        .service
        .login(LoginRequest {
            username: username.to_owned(),
            password: Password::new(PASSWORD.to_owned()),
            scope: scope.map(str::to_owned),
            client: ClientInfo::default(),
        })
        .await
        .expect("login");
    harness
        .service
        .authenticate_access_token(&grant.access_token)
        .await
        .expect("valid")
}

fn key_request(scopes: Option<&str>, days: Option<u32>) -> ApiKeyRequest {
    ApiKeyRequest {
        name: "ci".to_owned(),
        scopes: scopes.map(|names| names.split_whitespace().map(str::to_owned).collect()),
        expires_in_days: days,
    }
}

#[tokio::test]
async fn an_api_key_authenticates_with_the_scopes_it_was_given() {
    let harness = Harness::new();
    register(&harness, "root", Role::Admin).await;
    let admin = principal(&harness, "root", None).await;
    let (info, key) = harness
        .service
        .create_api_key(
            &admin,
            key_request(Some("profile"), None),
            &ClientInfo::default(),
        )
        .await
        .expect("created");
    assert!(key.starts_with(&info.prefix));
    let caller = harness
        .service
        .authenticate_api_key(&key)
        .await
        .expect("valid");
    assert_eq!(caller.credential, Credential::ApiKey(info.id));
    assert!(caller.require(Scope::Profile).is_ok());
    assert!(caller.require(Scope::Admin).is_err());
}

#[tokio::test]
async fn a_narrowed_token_cannot_mint_a_wider_key() {
    let harness = Harness::new();
    register(&harness, "root", Role::Admin).await;
    let narrowed = principal(&harness, "root", Some("profile")).await;
    let result = harness
        .service
        .create_api_key(
            &narrowed,
            key_request(Some("profile admin"), None),
            &ClientInfo::default(),
        )
        .await;
    let Err(AuthError::Validation(errors)) = result else {
        panic!("expected a validation error, got {result:?}");
    };
    assert_eq!(errors[0].field, "scopes");
    // Without scopes the key inherits the narrowed token's scopes.
    let (info, _) = harness
        .service
        .create_api_key(&narrowed, key_request(None, None), &ClientInfo::default())
        .await
        .expect("created");
    assert!(!info.scopes.contains(Scope::Admin));
}

#[tokio::test]
async fn revoked_expired_malformed_and_disabled_owners_keys_are_refused() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    register(&harness, "root", Role::Admin).await;
    let alice = principal(&harness, "alice", None).await;
    let (revoked, revoked_key) = harness
        .service
        .create_api_key(&alice, key_request(None, None), &ClientInfo::default())
        .await
        .expect("created");
    harness
        .service
        .revoke_api_key(&alice, revoked.id, &ClientInfo::default())
        .await
        .expect("revoked");
    assert!(
        harness
            .service
            .authenticate_api_key(&revoked_key)
            .await
            .is_err()
    );
    assert!(matches!(
        harness
            .service
            .revoke_api_key(&alice, revoked.id, &ClientInfo::default())
            .await,
        Err(AuthError::NotFound)
    ));

    let (_, expiring_key) = harness
        .service
        .create_api_key(&alice, key_request(None, Some(1)), &ClientInfo::default())
        .await
        .expect("created");
    assert!(
        harness
            .service
            .authenticate_api_key(&expiring_key)
            .await
            .is_ok()
    );
    harness.clock.advance(Duration::from_secs(86_401));
    assert!(
        harness
            .service
            .authenticate_api_key(&expiring_key)
            .await
            .is_err()
    );

    assert!(matches!(
        harness.service.authenticate_api_key("pcl_short").await,
        Err(AuthError::InvalidToken)
    ));

    let (_, key) = harness
        .service
        .create_api_key(&alice, key_request(None, None), &ClientInfo::default())
        .await
        .expect("created");
    harness
        .service
        .admin_update_user(
            alice.user.id,
            AdminUserUpdate {
                disabled: Some(true),
                ..AdminUserUpdate::default()
            },
            &Initiator::command_line(),
        )
        .await
        .expect("disabled");
    assert!(harness.service.authenticate_api_key(&key).await.is_err());
}

#[tokio::test]
async fn basic_credentials_authenticate_with_the_roles_scopes_and_cost_one_verification() {
    let harness = Harness::new();
    register(&harness, "root", Role::Admin).await;
    let caller = harness
        .service
        .authenticate_basic(
            "ROOT",
            &Password::new(PASSWORD.to_owned()),
            &ClientInfo::default(),
        )
        .await
        .expect("valid");
    assert_eq!(caller.credential, Credential::Basic);
    assert!(caller.require(Scope::Admin).is_ok());

    let before = harness.hasher.verifications.load(Ordering::SeqCst);
    let unknown = harness
        .service
        .authenticate_basic(
            "nobody",
            &Password::new(PASSWORD.to_owned()),
            &ClientInfo::default(),
        )
        .await;
    assert!(matches!(unknown, Err(AuthError::InvalidToken)));
    assert_eq!(
        harness.hasher.verifications.load(Ordering::SeqCst) - before,
        1
    );
    let wrong = harness
        .service
        .authenticate_basic(
            "root",
            &Password::new("wrong password".to_owned()),
            &ClientInfo::default(),
        )
        .await;
    assert!(matches!(wrong, Err(AuthError::InvalidToken)));
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_demoted_disabled_or_deleted() {
    let harness = Harness::new();
    register(&harness, "root", Role::Admin).await;
    let root = principal(&harness, "root", None).await;
    let demote = AdminUserUpdate {
        roles: Some(vec!["user".to_owned()]),
        ..AdminUserUpdate::default()
    };
    assert!(matches!(
        harness
            .service
            .admin_update_user(root.user.id, demote, &Initiator::command_line())
            .await,
        Err(AuthError::LastAdmin)
    ));
    assert!(matches!(
        harness
            .service
            .admin_delete_user(root.user.id, &Initiator::command_line())
            .await,
        Err(AuthError::LastAdmin)
    ));
    register(&harness, "second", Role::Admin).await;
    let demote = AdminUserUpdate {
        roles: Some(vec!["user".to_owned()]),
        ..AdminUserUpdate::default()
    };
    let demoted = harness
        .service
        .admin_update_user(root.user.id, demote, &Initiator::command_line())
        .await
        .expect("another admin exists");
    assert_eq!(demoted.role, Role::User);
}

#[tokio::test]
async fn unknown_roles_are_a_validation_error() {
    let harness = Harness::new();
    register(&harness, "alice", Role::User).await;
    let alice = principal(&harness, "alice", None).await;
    for roles in [vec!["root".to_owned()], vec![]] {
        let result = harness
            .service
            .admin_update_user(
                alice.user.id,
                AdminUserUpdate {
                    roles: Some(roles),
                    ..AdminUserUpdate::default()
                },
                &Initiator::command_line(),
            )
            .await;
        assert!(
            matches!(result, Err(AuthError::Validation(_))),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn user_pages_follow_their_cursor_without_repeats() {
    let harness = Harness::new();
    for n in 0..5 {
        register(&harness, &format!("user{n}"), Role::User).await;
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = harness
            .service
            .list_users(UserListQuery {
                after,
                limit: 2,
                search: None,
            })
            .await
            .expect("page");
        seen.extend(page.users.iter().map(|u| u.username.as_str().to_owned()));
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, ["user0", "user1", "user2", "user3", "user4"]);
}

#[tokio::test]
async fn an_explicitly_empty_scope_list_is_refused_rather_than_widened() {
    let harness = Harness::new();
    register(&harness, "root", Role::Admin).await;
    let admin = principal(&harness, "root", None).await;
    let result = harness
        .service
        .create_api_key(&admin, key_request(Some(""), None), &ClientInfo::default())
        .await;
    let Err(AuthError::Validation(errors)) = result else {
        panic!("expected a validation error, got {result:?}");
    };
    assert_eq!(errors[0].field, "scopes");
}
