//! Unicode and identity (attack review, issue 18): email addresses are
//! unique by their canonical form, passwords are NFKC-normalised and their
//! trivial patterns refused, and display names cannot carry invisible or
//! line-breaking characters.

use portcullis_crypto::{Argon2Hasher, Argon2Policy};
use portcullis_domain::audit::{AuditContext, AuditEvent};
use portcullis_domain::ports::UserStore;
use portcullis_domain::{EmailAddress, NewUser, PasswordHashString, Role, User, UserId, Username};
use portcullis_sqlite::SqliteStore;
use portcullis_tests::{GOOD_PASSWORD, TestApp};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::{Credential, admin_token_for, call, error_fields, expect_problem};

/// One password in composed (NFC) and decomposed (NFD) spelling.
const NFC_PASSWORD: &str = "cr\u{e8}me br\u{fb}l\u{e9}e 1987 pour la f\u{ea}te";
const NFD_PASSWORD: &str = "cre\u{300}me bru\u{302}le\u{301}e 1987 pour la fe\u{302}te";
/// The same password with full-width digits, which NFKC folds to ASCII.
const WIDE_DIGIT_PASSWORD: &str =
    "cr\u{e8}me br\u{fb}l\u{e9}e \u{ff11}\u{ff19}\u{ff18}\u{ff17} pour la f\u{ea}te";

async fn register(app: &TestApp, username: &str, email: &str, password: &str) -> Response {
    app.register_json(&json!({"username": username, "email": email, "password": password}))
        .await
}

/// Asserts a 409 on `email` or a 422 on `email`, whichever `status` says,
/// and that the body does not echo `submitted`.
async fn expect_email_refused(response: Response, status: u16, submitted: &str, case: &str) {
    assert_eq!(response.status(), status, "{case}");
    let problem = expect_problem(response, status).await;
    assert_eq!(error_fields(&problem), ["email"], "{case}: {problem}");
    assert!(
        !problem.to_string().contains(submitted),
        "{case}: {problem}"
    );
}

/// `text` percent-encoded as UTF-8 for a query string.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

async fn password_grant(app: &TestApp, username: &str, password: &str) -> Response {
    app.token_form(&[
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ])
    .await
}

async fn bearer_for(app: &TestApp, username: &str, password: &str) -> Credential {
    let response = password_grant(app, username, password).await;
    assert_eq!(response.status(), 200, "logging in {username}");
    let tokens: Value = response.json().await.expect("token json");
    Credential::Bearer(tokens["access_token"].as_str().expect("token").to_owned())
}

#[tokio::test]
async fn every_unicode_spoof_of_a_registered_email_is_refused_with_409_or_422() {
    let app = TestApp::spawn().await;
    for (username, email) in [
        ("kate", "kate@example.com"),
        ("jose", "josé@example.com"),
        ("bucher", "user@bücher.example"),
        ("pat", "pat@xn--caf-dma.example"),
    ] {
        let response = register(&app, username, email, GOOD_PASSWORD).await;
        assert_eq!(response.status(), 201, "{email}");
    }
    // 409: the canonical form folds the spoof onto the taken address.
    // 422: the spoof is refused outright (invisible characters in the local
    // part, a domain not in its normal form).
    let spoofs = [
        ("full-width letter", "\u{ff4b}ate@example.com", 409),
        (
            "full-width letter in the domain",
            "kate@\u{ff45}xample.com",
            422,
        ),
        ("soft hyphen", "ka\u{ad}te@example.com", 422),
        ("soft hyphen in the domain", "kate@exam\u{ad}ple.com", 422),
        ("zero-width space", "ka\u{200b}te@example.com", 422),
        ("variation selector", "kate\u{fe0f}@example.com", 422),
        (
            "ideographic full stop in the domain",
            "kate@example\u{3002}com",
            422,
        ),
        ("decomposed accent", "jose\u{301}@example.com", 409),
        (
            "decomposed accent in the domain",
            "user@bu\u{308}cher.example",
            422,
        ),
        ("Kelvin sign", "\u{212a}ate@example.com", 409),
        ("non-ASCII case", "JOS\u{c9}@example.com", 409),
        (
            "punycode of a Unicode domain",
            "user@xn--bcher-kva.example",
            409,
        ),
        ("Unicode of a punycode domain", "pat@caf\u{e9}.example", 409),
        ("ASCII case of punycode", "PAT@XN--CAF-DMA.EXAMPLE", 409),
    ];
    for (index, (case, spoof, status)) in spoofs.into_iter().enumerate() {
        let response = register(&app, &format!("spoof{index}"), spoof, GOOD_PASSWORD).await;
        expect_email_refused(response, status, spoof, case).await;
    }
}

#[tokio::test]
async fn internationalised_addresses_register_and_keep_their_spelling() {
    let app = TestApp::spawn().await;
    for (username, email, shown) in [
        ("jose", "josé@example.com", "josé@example.com"),
        (
            "renee",
            "rene\u{301}e@example.com",
            "ren\u{e9}e@example.com",
        ),
        ("bucher", "user@bücher.example", "user@bücher.example"),
        (
            "bucher2",
            "user2@xn--bcher-kva.example",
            "user2@xn--bcher-kva.example",
        ),
    ] {
        let response = register(&app, username, email, GOOD_PASSWORD).await;
        assert_eq!(response.status(), 201, "{email}");
        let user: Value = response.json().await.expect("user json");
        assert_eq!(
            user["email"], shown,
            "the local part is shown composed (NFC)"
        );
    }
}

#[tokio::test]
async fn changing_an_email_to_a_spoof_of_another_account_is_409_on_both_patch_routes() {
    let app = TestApp::spawn().await;
    let response = register(&app, "kate", "kate@bücher.example", GOOD_PASSWORD).await;
    assert_eq!(response.status(), 201);
    app.register("mallory").await;
    let mallory = bearer_for(&app, "mallory", GOOD_PASSWORD).await;
    let admin = Credential::Bearer(admin_token_for(&app, "root").await);
    let me = call(&app, Method::GET, "/users/me", Some(&mallory), None).await;
    let mallory_id = me.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    for spoof in [
        "\u{212a}ATE@xn--bcher-kva.example",
        "\u{ff4b}ate@bücher.example",
        "KATE@BüCHER.example",
    ] {
        let body = json!({ "email": spoof });
        // Changing one's own email re-authenticates (finding 4).
        let own_body = json!({ "email": spoof, "current_password": GOOD_PASSWORD });
        let own = call(
            &app,
            Method::PATCH,
            "/users/me",
            Some(&mallory),
            Some(&own_body),
        )
        .await;
        expect_email_refused(own, 409, spoof, "PATCH /users/me").await;
        let path = format!("/admin/users/{mallory_id}");
        let by_admin = call(&app, Method::PATCH, &path, Some(&admin), Some(&body)).await;
        expect_email_refused(by_admin, 409, spoof, "PATCH /admin/users/{id}").await;
    }
}

#[tokio::test]
async fn admin_search_finds_an_account_by_the_canonical_form_of_its_email() {
    let app = TestApp::spawn().await;
    let response = register(&app, "alice", "alice@bücher.example", GOOD_PASSWORD).await;
    assert_eq!(response.status(), 201);
    app.register("bob").await;
    let admin = Credential::Bearer(admin_token_for(&app, "root").await);
    for term in [
        "\u{ff21}\u{ff2c}\u{ff29}\u{ff23}\u{ff25}@B\u{dc}CHER.EXAMPLE",
        "ALICE@XN--BCHER-KVA.EXAMPLE",
        "xn--bcher-kva",
        "bu\u{308}cher",
    ] {
        let path = format!("/admin/users?q={}", percent_encoded(term));
        let response = call(&app, Method::GET, &path, Some(&admin), None).await;
        assert_eq!(response.status(), 200, "{term}");
        let page: Value = response.json().await.expect("page json");
        let usernames: Vec<&str> = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|user| user["username"].as_str())
            .collect();
        assert_eq!(usernames, ["alice"], "{term}");
    }
}

/// Passwords the review showed passing, each of which breaks a rule now.
const TRIVIAL_PASSWORDS: [(&str, &str); 5] = [
    ("one letter repeated", "aaaaaaaaaaaaaab"),
    ("a common password padded with digits", "password12345678"),
    ("white space only", "                "),
    (
        "one letter and fourteen combining marks",
        "x\u{300}\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}\u{307}\u{308}\u{309}\u{30a}\u{30b}\u{30c}\u{30d}",
    ),
    ("a short unit repeated", "hunter2hunter2hunter2"),
];

#[tokio::test]
async fn trivial_passwords_are_refused_at_registration_and_at_password_change() {
    let app = TestApp::spawn().await;
    app.register("walter").await;
    let walter = bearer_for(&app, "walter", GOOD_PASSWORD).await;
    for (index, (case, password)) in TRIVIAL_PASSWORDS.into_iter().enumerate() {
        let email = format!("trivial{index}@example.com");
        let response = register(&app, &format!("trivial{index}"), &email, password).await;
        let problem = expect_problem(response, 422).await;
        assert_eq!(error_fields(&problem), ["password"], "{case}: {problem}");

        let body = json!({"current_password": GOOD_PASSWORD, "new_password": password});
        let response = call(
            &app,
            Method::POST,
            "/users/me/password",
            Some(&walter),
            Some(&body),
        )
        .await;
        let problem = expect_problem(response, 422).await;
        assert_eq!(
            error_fields(&problem),
            ["new_password"],
            "{case}: {problem}"
        );
    }
    // Nothing changed: the old password still works.
    assert_eq!(
        password_grant(&app, "walter", GOOD_PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn a_password_containing_the_username_in_full_width_or_split_by_zero_width_is_refused() {
    let app = TestApp::spawn().await;
    for (index, password) in [
        "battery \u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45} staple horse",
        "battery ali\u{200b}ce staple horse",
    ]
    .into_iter()
    .enumerate()
    {
        let response = register(&app, "alice", &format!("a{index}@example.com"), password).await;
        let problem = expect_problem(response, 422).await;
        assert_eq!(error_fields(&problem), ["password"], "{problem}");
        assert_eq!(
            problem["errors"][0]["message"], "must not contain the username",
            "{problem}"
        );
    }
}

#[tokio::test]
async fn a_password_set_composed_logs_in_typed_decomposed_or_with_full_width_digits() {
    let app = TestApp::spawn().await;
    let response = register(&app, "chef", "chef@example.com", NFC_PASSWORD).await;
    assert_eq!(response.status(), 201);
    for (case, typed) in [
        ("composed", NFC_PASSWORD),
        ("decomposed", NFD_PASSWORD),
        ("full-width digits", WIDE_DIGIT_PASSWORD),
    ] {
        assert_eq!(
            password_grant(&app, "chef", typed).await.status(),
            200,
            "{case}"
        );
        let basic = Credential::basic("chef", typed);
        let me = call(&app, Method::GET, "/users/me", Some(&basic), None).await;
        assert_eq!(me.status(), 200, "Basic, {case}");
    }
    // A password changed to a decomposed spelling is stored normalised too.
    let chef = bearer_for(&app, "chef", NFD_PASSWORD).await;
    let new_nfd = "fe\u{302}te de la bie\u{300}re blonde";
    let body = json!({"current_password": NFD_PASSWORD, "new_password": new_nfd});
    let changed = call(
        &app,
        Method::POST,
        "/users/me/password",
        Some(&chef),
        Some(&body),
    )
    .await;
    assert_eq!(changed.status(), 204);
    let new_nfc = "f\u{ea}te de la bi\u{e8}re blonde";
    assert_eq!(password_grant(&app, "chef", new_nfc).await.status(), 200);
}

#[tokio::test]
async fn an_account_hashed_from_a_raw_decomposed_password_logs_in_and_is_rehashed_in_nfkc() {
    let app = TestApp::spawn().await;
    {
        // As a version without normalisation stored it: a hash of the NFD
        // bytes as typed.
        let store = SqliteStore::open(&app.database_path()).expect("the app's database");
        store.set_audit_key(portcullis::audit_key(&app.settings).expect("the app's audit key"));
        let id = UserId::random();
        let hasher = Argon2Hasher::new(Argon2Policy::insecure_test_policy()).expect("test hasher");
        let hash = hasher.hash(NFD_PASSWORD.as_bytes()).expect("hash");
        store
            .insert_user(
                &NewUser {
                    user: User {
                        id,
                        username: Username::parse("oldtimer").expect("username"),
                        email: EmailAddress::parse("oldtimer@example.com").expect("email"),
                        full_name: None,
                        role: Role::User,
                        disabled: false,
                        created_at: time::OffsetDateTime::UNIX_EPOCH,
                    },
                    password_hash: PasswordHashString::new(hash),
                },
                &AuditContext::system(time::OffsetDateTime::UNIX_EPOCH).record(
                    Some(id),
                    AuditEvent::UserRegistered {
                        username: Username::parse("oldtimer").expect("username"),
                        role: Role::User,
                    },
                ),
            )
            .await
            .expect("a v1 account");
    }
    // Typed composed, it does not match a hash of the decomposed bytes yet.
    let early = password_grant(&app, "oldtimer", NFC_PASSWORD).await;
    assert_eq!(early.status(), 400, "invalid_grant before the rehash");
    // Typed as first set, it matches the raw form and is rehashed...
    assert_eq!(
        password_grant(&app, "oldtimer", NFD_PASSWORD)
            .await
            .status(),
        200
    );
    // ...so that the stored hash is now of the NFKC form.
    assert_eq!(
        password_grant(&app, "oldtimer", NFC_PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn format_and_separator_characters_in_full_name_are_refused_on_every_route() {
    let app = TestApp::spawn().await;
    app.register("dana").await;
    let dana = bearer_for(&app, "dana", GOOD_PASSWORD).await;
    let admin = Credential::Bearer(admin_token_for(&app, "root").await);
    let me = call(&app, Method::GET, "/users/me", Some(&dana), None).await;
    let dana_id = me.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for (index, (case, name)) in [
        ("right-to-left override", "Dana \u{202e}gpj.exe"),
        ("line separator", "Dana\u{2028}Admin"),
        ("zero-width joiner", "Da\u{200d}na"),
        ("byte order mark", "\u{feff}Dana"),
    ]
    .into_iter()
    .enumerate()
    {
        let registration = json!({
            "username": format!("named{index}"),
            "email": format!("named{index}@example.com"),
            "password": GOOD_PASSWORD,
            "full_name": name,
        });
        let refusals = [
            ("registration", app.register_json(&registration).await),
            (
                "PATCH /users/me",
                call(
                    &app,
                    Method::PATCH,
                    "/users/me",
                    Some(&dana),
                    Some(&json!({ "full_name": name })),
                )
                .await,
            ),
            (
                "PATCH /admin/users/{id}",
                call(
                    &app,
                    Method::PATCH,
                    &format!("/admin/users/{dana_id}"),
                    Some(&admin),
                    Some(&json!({ "full_name": name })),
                )
                .await,
            ),
        ];
        for (route, response) in refusals {
            let problem = expect_problem(response, 422).await;
            assert_eq!(
                error_fields(&problem),
                ["full_name"],
                "{case}, {route}: {problem}"
            );
            assert!(!problem.to_string().contains(name), "{case}, {route}");
        }
    }
}
