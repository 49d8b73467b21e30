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
        Ok(first
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty()))
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

/// Parses an `application/x-www-form-urlencoded` body into its parameters,
/// in order and with repeats kept (so that [`OAuthForm::single`] can refuse
/// them).
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, OAuthErrorResponse> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthErrorResponse::invalid_request("the form body is not valid url-encoding"))
}

/// Why a JSON body was refused.
enum JsonRejection {
    /// Not JSON, or not an object: 400.
    Malformed(String),
    /// Missing fields or wrong types: 422.
    Invalid(Vec<FieldErrorBody>),
}

fn parse_json<T: DeserializeOwned>(data: &[u8]) -> Result<T, JsonRejection> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonRejection::Malformed(
            "a JSON request body is required".to_owned(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(data)
        .map_err(|_| JsonRejection::Malformed("the request body is not valid JSON".to_owned()))?;
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
            Ok(sample) => panic!("parsed: {sample:?}"),
        }
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
    fn json_content_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
