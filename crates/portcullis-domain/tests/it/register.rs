use portcullis_domain::{
    AuthError, ClientInfo, ConflictField, Password, RegistrationRequest, Role,
};

use crate::fakes::Harness;

fn request(username: &str, email: &str, password: &str) -> RegistrationRequest {
    RegistrationRequest {
        username: username.to_owned(),
        email: email.to_owned(),
        full_name: None,
        password: Password::new(password.to_owned()),
    }
}

#[tokio::test]
async fn registration_reports_every_invalid_field_at_once_and_hashes_nothing() {
    let harness = Harness::new();
    let mut bad = request("a", "not-an-email", "short");
    bad.full_name = Some("x".repeat(101));
    let Err(AuthError::Validation(errors)) =
        harness.service.register(bad, &ClientInfo::default()).await
    else {
        panic!("expected a validation error");
    };
    let mut fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["email", "full_name", "username"]);
    assert_eq!(
        harness
            .hasher
            .hashes
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn the_password_policy_sees_the_username_and_email() {
    let harness = Harness::new();
    let result = harness
        .service
        .register(
            request("alice", "alice@example.com", "my name is alice, really"),
            &ClientInfo::default(),
        )
        .await;
    let Err(AuthError::Validation(errors)) = result else {
        panic!("expected a validation error");
    };
    assert_eq!(errors[0].field, "password");
    assert!(!errors[0].message.contains("alice, really"));
}

#[tokio::test]
async fn a_new_account_is_an_enabled_user_and_names_collide_case_insensitively() {
    let harness = Harness::new();
    let user = harness
        .service
        .register(
            request("Alice", "alice@example.com", "correct horse battery staple"),
            &ClientInfo::default(),
        )
        .await
        .expect("registered");
    assert_eq!(user.username.as_str(), "alice");
    assert_eq!(user.role, Role::User);
    assert!(!user.disabled);
    let again = harness
        .service
        .register(
            request("ALICE", "other@example.com", "correct horse battery staple"),
            &ClientInfo::default(),
        )
        .await;
    assert!(matches!(
        again,
        Err(AuthError::Conflict(ConflictField::Username))
    ));
}
