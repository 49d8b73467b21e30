//! `Authorization` / `X-API-Key` header parsing
//! (`portcullis_http::security::{parse_credentials, parse_authorization}`).
//!
//! Input layout: byte 0 selects which headers are present (bit 0:
//! `Authorization`, bit 1: `X-API-Key`); the rest is the `Authorization` value,
//! then a NUL byte, then the `X-API-Key` value (a value with no NUL is all
//! `Authorization`). Properties: never panics; the `Debug` form is one of the
//! fixed, secret-free strings; a Basic username never contains `:` and
//! `username:password` is exactly what the header's base64 decodes to; Bearer
//! tokens and API keys are non-empty slices of the header value.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use portcullis_http::security::{PresentedCredential, parse_authorization, parse_credentials};

const DEBUG_FORMS: [&str; 6] = [
    "None",
    "Bearer(..)",
    "Basic(..)",
    "ApiKey(..)",
    "Malformed",
    "Several",
];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (authorization, api_key) = match rest.iter().position(|&b| b == 0) {
        Some(nul) => (&rest[..nul], &rest[nul + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    let authorization = (flags & 1 != 0).then_some(authorization);
    let api_key = (flags & 2 != 0).then_some(api_key);

    let from_authorization = parse_authorization(authorization);
    check(&from_authorization, authorization);
    let combined = parse_credentials(authorization, api_key);
    check(&combined, authorization);

    // With no X-API-Key header the answer is the Authorization header's alone.
    if api_key.is_none() {
        assert!(combined == from_authorization);
    }
    // Two usable-or-not credentials are never silently reduced to one.
    if from_authorization != PresentedCredential::None && api_key.is_some() {
        assert!(combined == PresentedCredential::Several);
    }
    if let PresentedCredential::ApiKey(key) = combined {
        let raw = api_key.expect("an API key credential needs the header");
        assert!(!key.is_empty());
        assert_eq!(key, key.trim());
        assert!(contains(raw, key.as_bytes()));
    }
});

fn check(credential: &PresentedCredential<'_>, authorization: Option<&[u8]>) {
    let debug = format!("{credential:?}");
    assert!(DEBUG_FORMS.contains(&debug.as_str()), "{debug}");
    match credential {
        PresentedCredential::Basic { username, password } => {
            assert!(!username.contains(':'));
            let raw = authorization.expect("Basic needs an Authorization header");
            let raw = std::str::from_utf8(raw).expect("Basic came from a UTF-8 header");
            let (_, token) = raw.split_once(' ').expect("Basic came from `scheme token`");
            let decoded = STANDARD
                .decode(token.trim_matches(' '))
                .expect("Basic came from valid base64");
            assert_eq!(decoded, format!("{username}:{password}").into_bytes());
        }
        PresentedCredential::Bearer(token) => {
            assert!(!token.is_empty());
            assert!(
                token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c))
            );
            assert!(contains(
                authorization.unwrap_or_default(),
                token.as_bytes()
            ));
        }
        _ => {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}
