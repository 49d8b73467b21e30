//! Unicode: passwords are normalised (NFKC) before the policy and hashing,
//! verified across normal forms in time independent of the account, and
//! email addresses are unique by their canonical key.

use std::sync::atomic::Ordering;

use portcullis_domain::ports::{Clock, UserStore};
use portcullis_domain::{
    AuthError, ClientInfo, ConflictField, EmailAddress, Initiator, LoginRequest, NewUser, Password,
    PasswordHashString, ProfileChanges, RegistrationRequest, Role, User, UserId, UserListQuery,
    UserSearch, Username,
};

use portcullis_store_conformance::fixtures;

use crate::fakes::Harness;

/// Composed (NFC) and decomposed (NFD) spellings of one password.
const NFC_PASSWORD: &str = "cr\u{e8}me br\u{fb}l\u{e9}e pour la f\u{ea}te";
const NFD_PASSWORD: &str = "cre\u{300}me bru\u{302}le\u{301}e pour la fe\u{302}te";

fn registration(username: &str, email: &str, password: &str) -> RegistrationRequest {
    RegistrationRequest {
        username: username.to_owned(),
        email: email.to_owned(),
        full_name: None,
        password: Password::new(password.to_owned()),
    }
}

fn login(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        username: username.to_owned(),
        password: Password::new(password.to_owned()),
        scope: None,
        client: ClientInfo::default(),
    }
}

async fn stored_hash(harness: &Harness, username: &str) -> String {
    let username = Username::parse(username).expect("username");
    harness
        .store
        .find_credentials(&username)
        .await
        .expect("store")
        .expect("account")
        .password_hash
        .as_str()
        .to_owned()
}

/// Verifications the hasher did while `login` ran, and its outcome.
async fn verifications_for(harness: &Harness, request: LoginRequest) -> (usize, bool) {
    let before = harness.hasher.verifications.load(Ordering::SeqCst);
    let result = harness.service.login(request).await;
    let after = harness.hasher.verifications.load(Ordering::SeqCst);
    (after - before, result.is_ok())
}

#[tokio::test]
async fn a_new_password_is_hashed_in_its_nfkc_form() {
    let harness = Harness::new();
    harness
        .service
        .register(
            registration("alice", "alice@example.com", NFD_PASSWORD),
            &ClientInfo::default(),
        )
        .await
        .expect("registered");
    assert_eq!(
        stored_hash(&harness, "alice").await,
        format!("v1:{NFC_PASSWORD}")
    );

    let wide = "purple monkey dishwasher \u{ff11}\u{ff19}\u{ff18}\u{ff17}";
    harness
        .service
        .create_user(
            registration("bob", "bob@example.com", wide),
            Role::User,
            &Initiator::command_line(),
        )
        .await
        .expect("registered");
    assert_eq!(
        stored_hash(&harness, "bob").await,
        "v1:purple monkey dishwasher 1987"
    );
}

#[tokio::test]
async fn an_unstable_password_costs_two_verifications_for_known_and_unknown_users_alike() {
    let harness = Harness::new();
    harness
        .service
        .create_user(
            registration("alice", "alice@example.com", NFC_PASSWORD),
            Role::User,
            &Initiator::command_line(),
        )
        .await
        .expect("registered");

    assert_eq!(
        verifications_for(&harness, login("alice", NFD_PASSWORD)).await,
        (2, true)
    );
    assert_eq!(
        verifications_for(&harness, login("alice", NFC_PASSWORD)).await,
        (1, true)
    );
    let wrong_nfd = "fe\u{302}te de la bie\u{300}re blonde";
    assert_eq!(
        verifications_for(&harness, login("alice", wrong_nfd)).await,
        (2, false)
    );
    let dummies_before = harness.hasher.dummy_verifications.load(Ordering::SeqCst);
    assert_eq!(
        verifications_for(&harness, login("nobody", NFD_PASSWORD)).await,
        (2, false)
    );
    assert_eq!(
        harness.hasher.dummy_verifications.load(Ordering::SeqCst) - dummies_before,
        2,
        "both verifications of an unknown user are dummy work"
    );
    assert_eq!(
        verifications_for(&harness, login("nobody", NFC_PASSWORD)).await,
        (1, false)
    );
    // A match on the normalised form needs no new hash.
    assert_eq!(harness.store.hash_updates.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_account_hashed_from_a_raw_password_logs_in_and_is_rehashed_in_nfkc() {
    let harness = Harness::new();
    // As a version without normalisation would have stored it.
    let user = User {
        id: UserId::random(),
        username: Username::parse("carol").expect("username"),
        email: EmailAddress::parse("carol@example.com").expect("email"),
        full_name: None,
        role: Role::User,
        disabled: false,
        created_at: time::OffsetDateTime::UNIX_EPOCH,
    };
    harness
        .store
        .insert_user(
            &NewUser {
                user,
                password_hash: PasswordHashString::new(format!("v1:{NFD_PASSWORD}")),
            },
            &fixtures::audit_record(harness.clock.now()),
        )
        .await
        .expect("inserted");

    // Typed composed, the password is NFKC-stable: one verification, of a
    // form the old hash was not made from. Only the form first set works
    // until the account has been rehashed.
    assert_eq!(
        verifications_for(&harness, login("carol", NFC_PASSWORD)).await,
        (1, false)
    );
    assert_eq!(
        verifications_for(&harness, login("carol", NFD_PASSWORD)).await,
        (2, true)
    );
    assert_eq!(harness.store.hash_updates.load(Ordering::SeqCst), 1);
    assert_eq!(
        stored_hash(&harness, "carol").await,
        format!("v1:{NFC_PASSWORD}")
    );
    assert_eq!(
        verifications_for(&harness, login("carol", NFC_PASSWORD)).await,
        (1, true)
    );
}

#[tokio::test]
async fn registering_a_unicode_spoof_of_a_taken_email_is_a_conflict() {
    let harness = Harness::new();
    harness
        .service
        .create_user(
            registration(
                "alice",
                "kate@bücher.example",
                "correct horse battery staple",
            ),
            Role::User,
            &Initiator::command_line(),
        )
        .await
        .expect("registered");
    for (username, spoof) in [
        ("spoof1", "KATE@bücher.example"),
        ("spoof2", "\u{212a}ate@xn--bcher-kva.example"),
        ("spoof3", "ｋａｔｅ@bücher.example"),
    ] {
        let result = harness
            .service
            .create_user(
                registration(username, spoof, "correct horse battery staple"),
                Role::User,
                &Initiator::command_line(),
            )
            .await;
        assert!(
            matches!(result, Err(AuthError::Conflict(ConflictField::Email))),
            "{spoof:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn changing_the_email_to_a_spoof_of_another_account_is_a_conflict_in_the_fake_store() {
    let harness = Harness::new();
    for (username, email) in [("alice", "josé@example.com"), ("bob", "bob@example.com")] {
        harness
            .service
            .create_user(
                registration(username, email, "correct horse battery staple"),
                Role::User,
                &Initiator::command_line(),
            )
            .await
            .expect("registered");
    }
    let bob = harness
        .store
        .find_credentials(&Username::parse("bob").expect("username"))
        .await
        .expect("store")
        .expect("bob")
        .user;
    let result = harness
        .store
        .update_profile(
            bob.id,
            &ProfileChanges {
                email: Some(EmailAddress::parse("JOSE\u{301}@example.com").expect("email")),
                full_name: None,
            },
            harness.clock.now(),
            &fixtures::audit_record(harness.clock.now()),
        )
        .await;
    assert!(matches!(
        result,
        Err(portcullis_domain::StoreError::Conflict(
            ConflictField::Email
        ))
    ));
}

#[tokio::test]
async fn admin_search_matches_the_canonical_form_of_an_email() {
    let harness = Harness::new();
    harness
        .service
        .create_user(
            registration(
                "alice",
                "alice@bücher.example",
                "correct horse battery staple",
            ),
            Role::User,
            &Initiator::command_line(),
        )
        .await
        .expect("registered");
    for term in ["ＡＬＩＣＥ@BÜCHER", "xn--bcher-kva.example", "Alice@"] {
        let page = harness
            .service
            .list_users(UserListQuery {
                after: None,
                limit: 10,
                search: Some(UserSearch::new(term)),
            })
            .await
            .expect("listed");
        assert_eq!(page.users.len(), 1, "{term:?}");
    }
}
