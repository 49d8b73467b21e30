//! Request payloads with Portcullis's own error handling.
//!
//! poem-openapi's `Json<T>` reports at most one validation failure, echoes
//! submitted values in type errors, and cannot say which field was missing.
//! These payload types keep the OpenAPI schema of `T` (declared with
//! `#[derive(Object)]` and `#[oai(validator(...))]`, so the constraints are
//! documented) but parse with serde and validate with the `validator` crate,
//! so a client gets every invalid field at once, in the contract's format,
//! and never sees its own input reflected back.

use std::marker::PhantomData;
use std::ops::Deref;

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors};

use crate::error::{ApiError, FieldErrorBody, OAuthErrorResponse};

const JSON_CONTENT_TYPE: &str = "application/json";
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// A JSON body parsed with serde and checked with `validator`; errors are
/// RFC 9457 problems (400 for malformed JSON, 422 listing every bad field).
#[derive(Debug)]
pub struct ValidatedJson<T>(pub T);

impl<T> Deref for ValidatedJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Type> Payload for ValidatedJson<T> {
    const CONTENT_TYPE: &'static str = JSON_CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: DeserializeOwned + Validate + Type> ParsePayload for ValidatedJson<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let value: T = parse_json(&data).map_err(|rejection| match rejection {
            JsonRejection::Malformed(detail) => ApiError::bad_request(detail),
            JsonRejection::DuplicateKey(key) => {
                ApiError::bad_request(JsonRejection::duplicate_detail(key.as_deref(), "JSON key"))
            }
            JsonRejection::Invalid(errors) => ApiError::validation(errors),
        })?;
        value
            .validate()
            .map_err(|errors| ApiError::validation(field_errors(&errors)))?;
        Ok(Self(value))
    }
}

impl_apirequest_for_payload!(ValidatedJson<T>, T: DeserializeOwned + Validate + Type);

/// A JSON body for an OAuth endpoint (`/auth/login`): errors are RFC 6749
/// `invalid_request` bodies.
#[derive(Debug)]
pub struct OAuthJson<T>(pub T);

impl<T> Deref for OAuthJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Type> Payload for OAuthJson<T> {
    const CONTENT_TYPE: &'static str = JSON_CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: DeserializeOwned + Type> ParsePayload for OAuthJson<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let value: T = parse_json(&data).map_err(|rejection| match rejection {
            JsonRejection::Malformed(detail) => OAuthErrorResponse::invalid_request(detail),
            JsonRejection::DuplicateKey(key) => OAuthErrorResponse::invalid_request(
                JsonRejection::duplicate_detail(key.as_deref(), "parameter"),
            ),
            JsonRejection::Invalid(errors) => {
                let described: Vec<String> = errors
                    .iter()
                    .map(|e| format!("`{}` {}", e.field, e.message))
                    .collect();
                OAuthErrorResponse::invalid_request(described.join("; "))
            }
        })?;
        Ok(Self(value))
    }
}

impl_apirequest_for_payload!(OAuthJson<T>, T: DeserializeOwned + Type);

/// An `application/x-www-form-urlencoded` body for an OAuth endpoint, kept as
/// its list of parameters so that repeated parameters can be refused (RFC 6749
/// §3.2) and unknown ones (Swagger UI's `client_id`) ignored. `S` only supplies
/// the documented schema.
#[derive(Debug)]
pub struct OAuthForm<S> {
    params: Vec<(String, String)>,
    schema: PhantomData<S>,
}

impl<S> OAuthForm<S> {
    /// The value of a parameter that may appear at most once; empty values
    /// count as absent (RFC 6749 §3.1).
    pub fn single(&self, name: &str) -> Result<Option<&str>, OAuthErrorResponse> {
        let mut values = self.params.iter().filter(|(key, _)| key == name);
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthErrorResponse::invalid_request(format!(
                "parameter `{name}` must not be repeated"
            )));
        }
        // `str::is_empty` by name: see `ProblemForm::single`.
        Ok(first
            .map(|(_, value)| value.as_str())
            .filter(|value| !str::is_empty(value)))
    }

    /// Like [`single`](Self::single), but the parameter is required.
    pub fn required(&self, name: &str) -> Result<&str, OAuthErrorResponse> {
        self.single(name)?.ok_or_else(|| {
            OAuthErrorResponse::invalid_request(format!("parameter `{name}` is required"))
        })
    }
}

impl<S: Type> Payload for OAuthForm<S> {
    const CONTENT_TYPE: &'static str = FORM_CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        media_type(content_type) == FORM_CONTENT_TYPE
    }

    fn schema_ref() -> MetaSchemaRef {
        S::schema_ref()
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
    }
}

impl<S: Type> ParsePayload for OAuthForm<S> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        Ok(Self {
            params: parse_form(&data)?,
            schema: PhantomData,
        })
    }
}

impl_apirequest_for_payload!(OAuthForm<S>, S: Type);

/// An `application/x-www-form-urlencoded` body for a protected, non-OAuth
/// operation (`/auth/introspect`): parsed exactly like [`OAuthForm`]
/// (repeated parameters refused, empty values absent, unknown ones
/// ignored), but its errors are RFC 9457 problems like every other
/// protected operation's: 400 for a repeated parameter or a body that is
/// not UTF-8, 422 naming a missing required one. `S` only supplies the
/// documented schema.
#[derive(Debug)]
pub struct ProblemForm<S> {
    params: Vec<(String, String)>,
    schema: PhantomData<S>,
}

impl<S> ProblemForm<S> {
    /// The value of a parameter that may appear at most once; empty values
    /// count as absent.
    pub fn single(&self, name: &'static str) -> Result<Option<&str>, FormParamError> {
        let mut values = self.params.iter().filter(|(key, _)| key == name);
        let first = values.next();
        if values.next().is_some() {
            return Err(FormParamError::Repeated(name));
        }
        // `str::is_empty` by name: poem-openapi's `Type` trait (in scope
        // here) has an `is_empty` too, which method resolution would pick
        // for a `&&str` and which is always false.
        Ok(first
            .map(|(_, value)| value.as_str())
            .filter(|value| !str::is_empty(value)))
    }

    /// Like [`single`](Self::single), but the parameter is required.
    pub fn required(&self, name: &'static str) -> Result<&str, FormParamError> {
        self.single(name)?.ok_or(FormParamError::Missing(name))
    }
}

/// What is wrong with a parameter of a [`ProblemForm`]; becomes an
/// [`ApiError`] with `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormParamError {
    /// The parameter appears more than once: 400.
    Repeated(&'static str),
    /// A required parameter is absent or empty: 422 naming it.
    Missing(&'static str),
}

impl From<FormParamError> for ApiError {
    fn from(error: FormParamError) -> Self {
        match error {
            FormParamError::Repeated(name) => {
                ApiError::bad_request(format!("parameter `{name}` must not be repeated"))
            }
            FormParamError::Missing(name) => ApiError::validation(vec![FieldErrorBody {
                field: name.to_owned(),
                message: "is required".to_owned(),
            }]),
        }
    }
}

impl<S: Type> Payload for ProblemForm<S> {
    const CONTENT_TYPE: &'static str = FORM_CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        media_type(content_type) == FORM_CONTENT_TYPE
    }

    fn schema_ref() -> MetaSchemaRef {
        S::schema_ref()
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
    }
}

impl<S: Type> ParsePayload for ProblemForm<S> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let params = parse_urlencoded(&data).map_err(|UrlEncodedError::InvalidUtf8| {
            ApiError::bad_request("the form body is not valid UTF-8 once percent-decoded")
        })?;
        Ok(Self {
            params,
            schema: PhantomData,
        })
    }
}

impl_apirequest_for_payload!(ProblemForm<S>, S: Type);

/// Parses an `application/x-www-form-urlencoded` body into its parameters,
/// in order and with repeats kept (so that [`OAuthForm::single`] can refuse
/// them). A name or value that is not UTF-8 once percent-decoded is refused:
/// decoding it lossily would make `%FF` and `%FE` the same password.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, OAuthErrorResponse> {
    parse_urlencoded(body).map_err(|UrlEncodedError::InvalidUtf8| {
        OAuthErrorResponse::invalid_request("the form body is not valid UTF-8 once percent-decoded")
    })
}

/// Why a url-encoded string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlEncodedError {
    /// A name or value is not UTF-8 once percent-decoded.
    InvalidUtf8,
}

/// Splits `application/x-www-form-urlencoded` text (a form body or a query
/// string) into its `(name, value)` pairs, in order and with repeats kept:
/// `&` separates pairs, the first `=` a name from its value, `+` is a space,
/// and `%XX` a byte. Unlike `form_urlencoded` (and so `serde_urlencoded`),
/// it refuses instead of replacing what does not decode to UTF-8.
///
/// ```
/// use portcullis_http::payload::{UrlEncodedError, parse_urlencoded};
///
/// assert_eq!(
///     parse_urlencoded(b"a=1&b=x+y%21&a=")?,
///     [("a", "1"), ("b", "x y!"), ("a", "")].map(|(n, v)| (n.to_owned(), v.to_owned()))
/// );
/// assert_eq!(parse_urlencoded(b"password=%FF"), Err(UrlEncodedError::InvalidUtf8));
/// # Ok::<(), UrlEncodedError>(())
/// ```
pub fn parse_urlencoded(text: &[u8]) -> Result<Vec<(String, String)>, UrlEncodedError> {
    let decode = |part: &[u8]| -> Result<String, UrlEncodedError> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|byte| if *byte == b'+' { b' ' } else { *byte })
            .collect();
        percent_encoding::percent_decode(&spaced)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| UrlEncodedError::InvalidUtf8)
    };
    text.split(|byte| *byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|byte| *byte == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// A client-chosen name (a JSON key, a parameter name) that is safe to
/// repeat in an error message: short and plain. Anything else is not
/// echoed.
pub(crate) fn printable_name(name: &str) -> Option<&str> {
    (!name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'))
    .then_some(name)
}

/// Why a JSON body was refused.
enum JsonRejection {
    /// Not JSON, not an object, or an object repeating a key: 400.
    Malformed(String),
    /// A repeated key (at any depth), which serde would otherwise settle
    /// silently by keeping the last value: 400.
    DuplicateKey(Option<String>),
    /// Missing fields or wrong types: 422.
    Invalid(Vec<FieldErrorBody>),
}

impl JsonRejection {
    /// The description of a repeated key, naming it when that is safe.
    fn duplicate_detail(name: Option<&str>, noun: &str) -> String {
        match name {
            Some(name) => format!("{noun} `{name}` must not be repeated"),
            None => format!("a {noun} must not be repeated"),
        }
    }
}

/// A JSON value read like `serde_json::Value`, except that an object
/// repeating a key is an error: `{"username":"nobody","username":"root"}`
/// must not log in as root because serde keeps the last value.
struct StrictValue<'a> {
    duplicate: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for StrictValue<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictValue<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, deserializer)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue {
            duplicate: self.duplicate,
        })? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(key);
                return Err(serde::de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(StrictValue {
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// Parses JSON text into a value, refusing repeated keys at any depth.
fn parse_strict_json(data: &[u8]) -> Result<serde_json::Value, JsonRejection> {
    let duplicate = std::cell::RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    let parsed = serde::de::DeserializeSeed::deserialize(
        StrictValue {
            duplicate: &duplicate,
        },
        &mut deserializer,
    )
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (_, Some(key)) => Err(JsonRejection::DuplicateKey(
            printable_name(&key).map(str::to_owned),
        )),
        (Ok(value), None) => Ok(value),
        (Err(_), None) => Err(JsonRejection::Malformed(
            "the request body is not valid JSON".to_owned(),
        )),
    }
}

fn parse_json<T: DeserializeOwned>(data: &[u8]) -> Result<T, JsonRejection> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonRejection::Malformed(
            "a JSON request body is required".to_owned(),
        ));
    }
    let value = parse_strict_json(data)?;
    if !value.is_object() {
        return Err(JsonRejection::Malformed(
            "the request body must be a JSON object".to_owned(),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = describe_data_error(&error.into_inner().to_string());
        match message {
            DataError::Missing(field) => JsonRejection::Invalid(vec![FieldErrorBody {
                field: join_path(&path, &field),
                message: "is required".to_owned(),
            }]),
            DataError::Expected(expected) => JsonRejection::Invalid(vec![FieldErrorBody {
                field: path,
                message: format!("must be {expected}"),
            }]),
            DataError::Other => JsonRejection::Invalid(vec![FieldErrorBody {
                field: path,
                message: "is invalid".to_owned(),
            }]),
        }
    })
}

enum DataError {
    Missing(String),
    Expected(String),
    Other,
}

/// Extracts what serde expected from its message. serde messages quote the
/// submitted value (`invalid type: integer `5`, expected a string`), so only
/// the part after `expected` is kept.
fn describe_data_error(message: &str) -> DataError {
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        return DataError::Missing(field.to_owned());
    }
    if let Some((_, expected)) = message.rsplit_once(", expected ") {
        let expected = expected.split(" at line ").next().unwrap_or(expected);
        // serde names Rust types in some messages; keep only plain phrases.
        if expected
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        {
            return DataError::Expected(expected.to_owned());
        }
    }
    DataError::Other
}

fn join_path(path: &str, field: &str) -> String {
    if path.is_empty() || path == "." {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// Turns `validator` errors into field errors without the submitted values
/// that `ValidationErrors` would otherwise serialise (STACK-NOTES 13).
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldErrorBody> {
    let mut fields: Vec<FieldErrorBody> = errors
        .field_errors()
        .into_iter()
        .flat_map(|(field, errors)| {
            errors.iter().map(move |error| FieldErrorBody {
                field: field.to_string(),
                message: match &error.message {
                    Some(message) => message.to_string(),
                    None => describe_rule(error),
                },
            })
        })
        .collect();
    fields.sort_by(|a, b| a.field.cmp(&b.field));
    fields
}

fn describe_rule(error: &validator::ValidationError) -> String {
    let param = |name: &str| error.params.get(name).map(ToString::to_string);
    match error.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            (None, None) => "has an invalid length".to_owned(),
        },
        "email" => "must be a valid email address".to_owned(),
        _ => "is invalid".to_owned(),
    }
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(content_type: &str) -> bool {
    let media = media_type(content_type);
    media == JSON_CONTENT_TYPE || (media.starts_with("application/") && media.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        count: u32,
    }

    fn invalid(result: Result<Sample, JsonRejection>) -> Vec<FieldErrorBody> {
        match result {
            Err(JsonRejection::Invalid(errors)) => errors,
            Err(JsonRejection::Malformed(detail)) => panic!("malformed: {detail}"),
            Err(JsonRejection::DuplicateKey(key)) => panic!("duplicate: {key:?}"),
            Ok(sample) => panic!("parsed: {sample:?}"),
        }
    }

    #[test]
    fn an_empty_form_value_is_absent_in_both_forms() {
        let params = parse_form(b"token=&hint=x").expect("parsed");
        let oauth = OAuthForm::<String> {
            params: params.clone(),
            schema: PhantomData,
        };
        assert_eq!(oauth.single("token").ok(), Some(None));
        assert!(oauth.required("token").is_err());
        assert_eq!(oauth.single("hint").ok(), Some(Some("x")));
        let problem = ProblemForm::<String> {
            params,
            schema: PhantomData,
        };
        assert_eq!(problem.single("token"), Ok(None));
        assert_eq!(
            problem.required("token"),
            Err(FormParamError::Missing("token"))
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let errors = invalid(parse_json(br#"{"name":"x"}"#));
        assert_eq!(errors[0].field, "count");
        assert_eq!(errors[0].message, "is required");
    }

    #[test]
    fn a_type_error_names_the_field_without_echoing_the_value() {
        let errors = invalid(parse_json(br#"{"name":"x","count":"secret-value"}"#));
        assert_eq!(errors[0].field, "count");
        assert!(
            !errors[0].message.contains("secret-value"),
            "{}",
            errors[0].message
        );
        assert!(
            errors[0].message.starts_with("must be"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn broken_json_and_non_objects_are_malformed() {
        for body in [&b"{"[..], b"[1,2]", b"\"text\"", b"", b"  "] {
            assert!(
                matches!(parse_json::<Sample>(body), Err(JsonRejection::Malformed(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_named_only_when_plain() {
        for (body, key) in [
            (
                &br#"{"name":"nobody","name":"root","count":1}"#[..],
                Some("name"),
            ),
            (
                br#"{"outer":{"a":1,"a":2},"name":"x","count":1}"#,
                Some("a"),
            ),
            (br#"{"list":[{"b":1,"b":1}]}"#, Some("b")),
            (br#"{"a b":1,"a b":2}"#, None),
        ] {
            match parse_json::<serde_json::Value>(body) {
                Err(JsonRejection::DuplicateKey(found)) => {
                    assert_eq!(found.as_deref(), key, "{body:?}");
                }
                _ => panic!("accepted or misread: {body:?}"),
            }
        }
        assert!(parse_json::<Sample>(br#"{"name":"x","count":1}"#).is_ok());
    }

    #[test]
    fn lone_surrogate_escapes_are_not_valid_json_strings() {
        assert!(matches!(
            parse_json::<Sample>(br#"{"name":"\udcff","count":1}"#),
            Err(JsonRejection::Malformed(_))
        ));
    }

    #[test]
    fn url_encoding_that_is_not_utf8_is_refused_not_replaced() {
        assert_eq!(
            parse_urlencoded(b"password=%FF"),
            Err(UrlEncodedError::InvalidUtf8)
        );
        assert_eq!(
            parse_urlencoded(b"password=%C0"),
            Err(UrlEncodedError::InvalidUtf8)
        );
        assert_eq!(
            parse_urlencoded(b"password=\xfe"),
            Err(UrlEncodedError::InvalidUtf8)
        );
        assert_eq!(
            parse_urlencoded(b"%FF=x"),
            Err(UrlEncodedError::InvalidUtf8)
        );
        assert_eq!(
            parse_urlencoded(b"p=%C3%A9&q=a%20b+c")
                .map(|pairs| pairs.into_iter().map(|(_, v)| v).collect::<Vec<_>>()),
            Ok(vec!["é".to_owned(), "a b c".to_owned()])
        );
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
