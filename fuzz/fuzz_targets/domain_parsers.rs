//! The domain's input parsers (`portcullis_domain`): `Username`,
//! `EmailAddress`, `FullName`, `ScopeSet`, `is_well_formed_api_key` and
//! `PasswordPolicy::check`, on the input as (lossy) UTF-8.
//!
//! Properties: never panics; a parsed username is 3 to 32 characters of
//! `a-z 0-9 _ . -`, equal to the ASCII-lower-cased input, and parses to
//! itself; an email address keeps its input and has an `@`; a full name has
//! at most 100 characters and no control characters; a scope set's display
//! form parses back to the same set; a well-formed API key is `pcl_` plus 43
//! base64url characters; a password the policy accepts is 15 to 256
//! characters, not a common password and does not contain the username.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_domain::{
    EmailAddress, FullName, Password, PasswordPolicy, ScopeSet, Username, is_common_password,
    is_well_formed_api_key,
};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let input = input.as_ref();

    if let Ok(username) = Username::parse(input) {
        let name = username.as_str();
        assert!((3..=32).contains(&name.chars().count()), "{name:?}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)),
            "{name:?}"
        );
        assert!(!name.contains(':'));
        assert_eq!(name, input.to_ascii_lowercase());
        assert_eq!(Username::parse(name).as_ref().ok(), Some(&username));
    }

    if let Ok(email) = EmailAddress::parse(input) {
        // Shown as given apart from an NFC local part: the domain is as typed.
        let (_, domain) = input.rsplit_once('@').expect("an @");
        assert!(email.as_str().ends_with(domain));
        assert!(email.as_str().chars().count() <= 254);
        assert!(email.as_str().contains('@'));
        assert!(!email.local_part().contains('@'));
        assert!(!email.canonical_local_part().contains('@'));
        // The display form names the same address.
        let reparsed = EmailAddress::parse(email.as_str()).expect("the display form parses");
        assert_eq!(reparsed.canonical(), email.canonical());
    }

    if let Ok(full_name) = FullName::parse(input) {
        assert!(full_name.as_str().chars().count() <= 100);
        assert!(!full_name.as_str().chars().any(char::is_control));
        for refused in ['\u{202e}', '\u{2028}', '\u{2029}', '\u{200d}', '\u{feff}'] {
            assert!(!full_name.as_str().contains(refused));
        }
    }

    if let Ok(scopes) = ScopeSet::parse(input) {
        let shown = scopes.to_string();
        assert_eq!(ScopeSet::parse(&shown), Ok(scopes), "{shown:?}");
    }

    if is_well_formed_api_key(input) {
        assert_eq!(input.len(), 47);
        assert!(input.starts_with("pcl_"));
        assert!(
            input[4..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    // The password check, against a fixed account and against one named by
    // the input's first line when that is a valid username.
    let fixed_user = Username::parse("alice").expect("valid");
    let fixed_email = EmailAddress::parse("alice.smith@example.com").expect("valid");
    let policy = PasswordPolicy::default();
    let (first_line, password) = input.split_once('\n').unwrap_or(("", input));
    check_password(policy, password, &fixed_user, &fixed_email);
    if let Ok(user) = Username::parse(first_line) {
        check_password(policy, password, &user, &fixed_email);
    }
});

fn check_password(policy: PasswordPolicy, password: &str, user: &Username, email: &EmailAddress) {
    let accepted = policy
        .check(&Password::new(password.to_owned()), user, email)
        .is_ok();
    if accepted {
        // The policy judges the NFKC form (NFKC can lengthen a password:
        // U+01C7 is "LJ"), and that form is what gets stored.
        let normalised = Password::new(password.to_owned()).nfkc();
        let length = normalised.char_count();
        assert!((PasswordPolicy::DEFAULT_MIN_LENGTH..=256).contains(&length));
        assert!(!is_common_password(normalised.expose()));
        assert!(!normalised.expose().to_lowercase().contains(user.as_str()));
    }
}
