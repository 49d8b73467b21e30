//! The `application/x-www-form-urlencoded` body of `/auth/token` and friends
//! (`portcullis_http::payload::parse_form`).
//!
//! Properties: never panics; a body that parses re-serialises with
//! `serde_urlencoded` to a body that parses to the same parameters, in the
//! same order, repeats kept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_http::payload::parse_form;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = parse_form(data) else {
        return;
    };
    let body = serde_urlencoded::to_string(&params).expect("string pairs always serialise");
    let Ok(again) = parse_form(body.as_bytes()) else {
        panic!("a re-serialised form does not parse: {body:?}");
    };
    assert_eq!(params, again, "{body:?}");
});
