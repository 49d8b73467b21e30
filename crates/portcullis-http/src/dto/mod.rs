//! Wire types (HTTP DTOs). Domain types are not wire types: these convert
//! from them, and the domain never sees these.

use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;
use portcullis_domain::{ApiKeyInfo, ScopeSet, SessionInfo, TokenGrant, User};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;
use validator::Validate;

use crate::wire_strings::{EmailString, RoleName, ScopeName};

mod introspection;
mod publication;

pub use introspection::{IntrospectionBody, IntrospectionRequestForm};
pub use publication::{
    AuthorizationServerMetadataBody, JsonWebKeyBody, JsonWebKeySetBody, KeyAlgorithmName,
    KeyStateName, SigningKeyBody,
};

// Patterns below are documentation for clients and schema-driven tools; the
// rules are enforced by `validator` and the domain. They use the regex syntax
// that Python's `re` and Rust's `regex` share (`\uXXXX` and, beyond the
// BMP, `\UXXXXXXXX`; ECMA-262 without the `u` flag reads only the former).
// The `full_name` pattern lists every code point of general category Cc,
// Cf, Zl and Zp (Unicode 18, `unicode-properties`), which `FullName::parse`
// refuses; a test in this file recomputes the list from the domain over all
// of U+0000..U+10FFFF, so the document cannot drift from the code.

/// An account. Never contains a password hash or any other secret.
#[derive(Debug, Clone, Object)]
#[oai(rename = "User")]
pub struct UserBody {
    /// Stable identifier (UUID).
    pub id: Uuid,
    /// Login name, lower-case.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Display name.
    #[oai(nullable)]
    pub full_name: Option<String>,
    /// Roles: `user` or `admin`.
    pub roles: Vec<String>,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Creation time, RFC 3339 UTC.
    pub created_at: OffsetDateTime,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            username: user.username.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            full_name: user.full_name.map(|n| n.as_str().to_owned()),
            roles: vec![user.role.as_str().to_owned()],
            disabled: user.disabled,
            created_at: user.created_at,
        }
    }
}

/// A new account. Fields other than these (such as `roles` or `disabled`)
/// are ignored.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(rename = "RegisterRequest")]
pub struct RegisterRequest {
    /// 3–32 characters of `a-z 0-9 _ . -`; compared case-insensitively and stored lower-case.
    #[oai(validator(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9_.-]{3,32}$"))]
    #[validate(length(min = 3, max = 32), custom(function = "username_alphabet"))]
    pub username: String,
    /// A valid email address (internationalised addresses are accepted), at
    /// most 254 characters, unique by its canonical form: the local part
    /// compared after NFKC normalisation and lower-casing, the domain in its
    /// IDNA Unicode form, so `ＡＬＩＣＥ@example.com` or a punycode spelling
    /// of the domain is the same address. Refused: invisible or formatting
    /// characters in the local part, and a domain not written in its normal
    /// form (full-width letters, `。`, decomposed accents…).
    #[oai(validator(max_length = 254))]
    #[validate(length(max = 254), custom(function = "email_address"))]
    pub email: EmailString,
    /// Optional display name, at most 100 characters, none of them a control,
    /// format or line/paragraph-separator character (general categories Cc,
    /// Cf, Zl, Zp: bidi overrides, zero-width characters, U+FEFF, U+2028,
    /// U+2029 are refused). The `pattern` lists those up to U+FFFF; the
    /// format characters above it (tag characters U+E0001 and
    /// U+E0020–U+E007F, and a few script-specific controls) are refused too.
    #[oai(
        nullable,
        validator(
            max_length = 100,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB]*$"
        )
    )]
    #[validate(length(max = 100))]
    pub full_name: Option<String>,
    /// At least the configured minimum (default 15) and at most 256 characters,
    /// counted in code points both as sent and after NFKC normalisation (the form that is
    /// stored and verified, so composed and decomposed accents, or full-width
    /// and ASCII digits, are the same password). "Effective characters" below
    /// are code points that are not white space, not format characters (Cf)
    /// and not combining marks. Refused when it
    /// has fewer than 5 different effective characters (ignoring case); when
    /// one character repeated, or a run of consecutive characters
    /// (`abcd…`, `9876…`, digits wrapping `…8901…`), is longer than half of
    /// it; when it is a unit shorter than the minimum length repeated
    /// (`hunter2hunter2hunter2`); when it is on the list of common passwords,
    /// also after removing a trailing run of digits (`password12345678`);
    /// or when it contains the username or the email's local part (3+
    /// characters), compared after NFKC and lower-casing with spaces and
    /// format characters removed.
    #[oai(validator(min_length = 15, max_length = 256))]
    #[validate(length(max = 256))]
    pub password: String,
}

/// Validates the username alphabet for the `validator` derive.
pub(crate) fn username_alphabet(username: &str) -> Result<(), validator::ValidationError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    if username.chars().all(allowed) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("alphabet")
            .with_message("may contain only a-z, 0-9, '_', '.' and '-'".into()))
    }
}

/// Validates an email address for the `validator` derive with the domain's
/// own parser, so that its rules (and its messages, which never echo the
/// address) are reported together with the other fields' errors.
pub(crate) fn email_address(email: &EmailString) -> Result<(), validator::ValidationError> {
    if email.chars().count() > 254 {
        // Reported once, by the `length` rule.
        return Ok(());
    }
    match portcullis_domain::EmailAddress::parse(email) {
        Ok(_) => Ok(()),
        Err(error) => {
            Err(validator::ValidationError::new("email").with_message(error.message.into()))
        }
    }
}

/// Changes to your profile. Absent fields are left unchanged; `full_name: null` clears it.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(rename = "UpdateProfileRequest")]
pub struct UpdateProfileRequest {
    /// New email address (absent or `null`: unchanged); the rules of
    /// registration apply, uniqueness included.
    #[oai(nullable, validator(max_length = 254))]
    #[validate(length(max = 254), custom(function = "email_address"))]
    pub email: Option<EmailString>,
    /// New display name (at most 100 characters, none of them of general
    /// category Cc, Cf, Zl or Zp, tag characters above U+FFFF included), or
    /// `null` to clear it.
    #[oai(
        nullable,
        validator(
            max_length = 100,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB]*$"
        )
    )]
    #[serde(default)]
    pub full_name: MaybeUndefined<String>,
    /// Your current password: required whenever `email` is present (a wrong
    /// one is a 422 on this field); not needed to change only `full_name`.
    #[oai(write_only, validator(max_length = 256))]
    #[validate(length(max = 256))]
    pub current_password: Option<String>,
}

/// The JSON login: the password grant as a JSON object.
#[derive(Debug, Object, Deserialize)]
#[oai(rename = "LoginRequest")]
pub struct LoginRequest {
    /// Your username (case-insensitive).
    pub username: String,
    /// Your password.
    #[oai(write_only)]
    pub password: String,
    /// Optional space-separated scopes to narrow the grant: `profile`,
    /// `admin`, `introspect`.
    #[oai(
        nullable,
        validator(
            pattern = r"^[ \t]*((profile|admin|introspect)([ \t]+(profile|admin|introspect))*)?[ \t]*$"
        )
    )]
    pub scope: Option<String>,
}

/// The OAuth2 token request (RFC 6749 §4.3 and §6), form-encoded. Other
/// parameters (such as Swagger UI's `client_id`) are accepted and ignored.
#[derive(Debug, Object)]
#[oai(rename = "TokenRequest")]
pub struct TokenRequestForm {
    /// `password` or `refresh_token`; any other value is answered with
    /// `unsupported_grant_type` (RFC 6749 §5.2), so the schema keeps it a string.
    pub grant_type: String,
    /// For `grant_type=password`: your username.
    pub username: Option<String>,
    /// For `grant_type=password`: your password.
    #[oai(write_only)]
    pub password: Option<String>,
    /// For `grant_type=refresh_token`: the refresh token.
    #[oai(write_only)]
    pub refresh_token: Option<String>,
    /// Optional space-separated scopes to narrow the grant: `profile`,
    /// `admin`, `introspect`.
    #[oai(validator(
        pattern = r"^[ \t]*((profile|admin|introspect)([ \t]+(profile|admin|introspect))*)?[ \t]*$"
    ))]
    pub scope: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Object)]
#[oai(rename = "TokenResponse")]
pub struct TokenResponseBody {
    /// The access token: a JWT (RFC 9068) to send as `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// Opaque refresh token; shown once.
    pub refresh_token: String,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl From<TokenGrant> for TokenResponseBody {
    fn from(grant: TokenGrant) -> Self {
        Self {
            access_token: grant.access_token,
            token_type: "Bearer".to_owned(),
            expires_in: grant.expires_in.as_secs(),
            refresh_token: grant.refresh_token,
            scope: grant.scopes.to_string(),
        }
    }
}

/// Service health.
#[derive(Debug, Object)]
#[oai(rename = "Health")]
pub struct HealthBody {
    /// `ok` or `unavailable`.
    pub status: String,
    /// `ok` or `unavailable`.
    pub database: String,
}

/// Whether the process answers at all.
#[derive(Debug, Object)]
#[oai(rename = "Liveness")]
pub struct LivenessBody {
    /// Always `ok`.
    pub status: String,
}

/// Whether this node can serve requests.
#[derive(Debug, Object)]
#[oai(rename = "Readiness")]
pub struct ReadinessBody {
    /// `ok` when every check below is `ok`, else `unavailable`.
    pub status: String,
    /// `ok` when the store answers, its schema is migrated and it takes
    /// writes; else `unavailable`.
    pub database: String,
    /// `ok` when this node holds a key to sign access tokens with; else
    /// `unavailable`.
    pub signing_key: String,
}

/// The RFC 7009 revocation request, form-encoded.
#[derive(Debug, Object)]
#[oai(rename = "RevocationRequest")]
pub struct RevocationRequestForm {
    /// The access or refresh token to revoke. Empty counts as absent: 400
    /// `invalid_request` (RFC 7009 §2.1 requires it).
    #[oai(write_only, validator(min_length = 1))]
    pub token: String,
    /// `access_token` or `refresh_token`; a hint only.
    pub token_type_hint: Option<String>,
}

/// A password change.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(rename = "PasswordChangeRequest")]
pub struct PasswordChangeRequest {
    /// Your current password.
    #[oai(write_only, validator(max_length = 256))]
    #[validate(length(max = 256))]
    pub current_password: String,
    /// The new password: the same rules as at registration.
    #[oai(write_only, validator(min_length = 15, max_length = 256))]
    #[validate(length(max = 256))]
    pub new_password: String,
}

/// Confirmation of an account deletion.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(rename = "AccountDeletionRequest")]
pub struct AccountDeletionRequest {
    /// Your current password.
    #[oai(write_only, validator(max_length = 256))]
    #[validate(length(max = 256))]
    pub password: String,
}

/// A live login session.
#[derive(Debug, Object)]
#[oai(rename = "Session")]
pub struct SessionBody {
    /// Session id (the `sid` of its access tokens).
    pub id: Uuid,
    /// When it started (the login).
    pub created_at: OffsetDateTime,
    /// When its refresh token was last used.
    pub last_used_at: OffsetDateTime,
    /// When it ends unless used again.
    pub expires_at: OffsetDateTime,
    /// Client address at login.
    #[oai(nullable)]
    pub ip: Option<String>,
    /// Client `User-Agent` at login.
    #[oai(nullable)]
    pub user_agent: Option<String>,
    /// Whether this is the session of the credential making the request.
    pub current: bool,
}

impl SessionBody {
    /// Converts a session, marking it current when it is the caller's.
    pub fn new(session: SessionInfo, current: bool) -> Self {
        Self {
            id: session.id.as_uuid(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            ip: session.ip,
            user_agent: session.user_agent,
            current,
        }
    }
}

fn scope_names(scopes: ScopeSet) -> Vec<String> {
    scopes
        .iter()
        .map(|scope| scope.as_str().to_owned())
        .collect()
}

/// A new API key.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(rename = "ApiKeyRequest")]
pub struct ApiKeyRequestBody {
    /// A label to recognise the key by: 1–64 characters, not only white
    /// space, no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    #[validate(length(min = 1, max = 64))]
    pub name: String,
    /// Scopes (`profile`, `admin`, `introspect`), at least one; default and
    /// maximum: the scopes of the credential creating the key. A resource
    /// server's key usually carries `introspect` alone.
    #[oai(nullable, validator(min_items = 1, max_items = 3))]
    #[validate(length(max = 3))]
    pub scopes: Option<Vec<ScopeName>>,
    /// Lifetime in days (1–3650); default: no expiry.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3650")))]
    #[validate(range(min = 1, max = 3650))]
    pub expires_in_days: Option<u32>,
}

/// An API key. Never contains the key itself.
#[derive(Debug, Object)]
#[oai(rename = "ApiKey")]
pub struct ApiKeyBody {
    /// Key id.
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last use (updated at most once a minute).
    #[oai(nullable)]
    pub last_used_at: Option<OffsetDateTime>,
    /// Expiry, if any.
    #[oai(nullable)]
    pub expires_at: Option<OffsetDateTime>,
}

impl From<ApiKeyInfo> for ApiKeyBody {
    fn from(key: ApiKeyInfo) -> Self {
        Self {
            id: key.id.as_uuid(),
            name: key.name,
            prefix: key.prefix,
            scopes: scope_names(key.scopes),
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            expires_at: key.expires_at,
        }
    }
}

/// A newly created API key, with the key itself: shown this once, store it now.
#[derive(Debug, Object)]
#[oai(rename = "NewApiKey")]
pub struct NewApiKeyBody {
    /// Key id.
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Always null for a new key.
    #[oai(nullable)]
    pub last_used_at: Option<OffsetDateTime>,
    /// Expiry, if any.
    #[oai(nullable)]
    pub expires_at: Option<OffsetDateTime>,
    /// The key: send it as `X-API-Key`. It cannot be shown again.
    pub key: String,
}

impl NewApiKeyBody {
    /// Combines a key's listing with the key itself.
    pub fn new(info: ApiKeyInfo, key: String) -> Self {
        let body = ApiKeyBody::from(info);
        Self {
            id: body.id,
            name: body.name,
            prefix: body.prefix,
            scopes: body.scopes,
            created_at: body.created_at,
            last_used_at: body.last_used_at,
            expires_at: body.expires_at,
            key,
        }
    }
}

/// A page of users.
#[derive(Debug, Object)]
#[oai(rename = "UserPage")]
pub struct UserPageBody {
    /// The users, oldest first.
    pub items: Vec<UserBody>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// Changes an admin makes to an account; absent fields are left alone.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(rename = "AdminUserUpdate")]
pub struct AdminUserUpdateBody {
    /// `true` disables the account and ends its sessions and API keys at once.
    #[oai(nullable)]
    pub disabled: Option<bool>,
    /// `["user"]` or `["admin"]` (a list naming `admin` makes an admin).
    #[oai(nullable, validator(min_items = 1, max_items = 2))]
    #[validate(length(min = 1, max = 2))]
    pub roles: Option<Vec<RoleName>>,
    /// New email address; the rules of registration apply, uniqueness by
    /// canonical form included.
    #[oai(nullable, validator(max_length = 254))]
    #[validate(length(max = 254), custom(function = "email_address"))]
    pub email: Option<EmailString>,
    /// New display name (at most 100 characters, none of them of general
    /// category Cc, Cf, Zl or Zp, tag characters above U+FFFF included), or
    /// `null` to clear it.
    #[oai(
        nullable,
        validator(
            max_length = 100,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB]*$"
        )
    )]
    #[serde(default)]
    pub full_name: MaybeUndefined<String>,
}

#[cfg(test)]
mod tests {
    use portcullis_domain::FullName;
    use serde_json::Value;

    /// The code points `FullName::parse` refuses on their own, as inclusive
    /// ranges, computed over every Unicode scalar value.
    fn refused_ranges() -> Vec<(u32, u32)> {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for c in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
            if FullName::parse(c.encode_utf8(&mut [0; 4])).is_ok() {
                continue;
            }
            let code = u32::from(c);
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == code => *end = code,
                _ => ranges.push((code, code)),
            }
        }
        ranges
    }

    /// `^[^<ranges>]*$` with `\uXXXX` escapes, for the ranges in the Basic
    /// Multilingual Plane: ECMA-262 without the `u` flag (what OpenAPI 3.0
    /// names, and what schemathesis reads) has no escape for a code point
    /// beyond U+FFFF, so the few format characters there (tags, musical
    /// beams, hieroglyph and shorthand controls) are refused by the server
    /// but only named in the field's description.
    fn pattern_for(ranges: &[(u32, u32)]) -> String {
        let escape = |code: u32| format!("\\u{code:04X}");
        let class: String = ranges
            .iter()
            .filter(|&&(start, _)| start <= 0xFFFF)
            .map(|&(start, end)| {
                if start == end {
                    escape(start)
                } else {
                    format!("{}-{}", escape(start), escape(end))
                }
            })
            .collect();
        format!("^[^{class}]*$")
    }

    #[test]
    fn the_documented_full_name_pattern_refuses_exactly_what_the_domain_refuses() {
        let expected = pattern_for(&refused_ranges());
        let document: Value =
            serde_json::from_str(&crate::openapi_json()).expect("the document is JSON");
        for schema in ["RegisterRequest", "UpdateProfileRequest", "AdminUserUpdate"] {
            let pattern =
                &document["components"]["schemas"][schema]["properties"]["full_name"]["pattern"];
            assert_eq!(
                pattern.as_str(),
                Some(expected.as_str()),
                "{schema}: the pattern must list exactly the refused ranges"
            );
        }
        // And the pattern means that in a real regex engine (Rust's `regex`
        // reads the same `\u` escapes as Python's `re` and ECMA-262), over
        // the Basic Multilingual Plane it can describe.
        let regex = regex::Regex::new(&expected).expect("the pattern compiles");
        assert!(
            refused_ranges()
                .iter()
                .all(|&(start, end)| end <= 0xFFFF || start > 0xFFFF),
            "no refused range straddles U+FFFF"
        );
        for c in (0..=0xFFFF_u32).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(
                regex.is_match(&text),
                FullName::parse(&text).is_ok(),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }
}

/// One security event of the audit log.
#[derive(Debug, Object)]
#[oai(rename = "AuditEvent")]
pub struct AuditEventBody {
    /// Its position in the log's chain, from 1, without gaps.
    pub seq: u64,
    /// When it happened.
    pub at: OffsetDateTime,
    /// What happened, e.g. `login.succeeded`, `login.failed`,
    /// `session.ended`, `api_key.created` (docs/api.md lists them all).
    pub event: String,
    /// The account that acted (the user logging in, the administrator);
    /// null for the command line and the service itself.
    #[oai(nullable)]
    pub actor_id: Option<Uuid>,
    /// The account the event is about.
    #[oai(nullable)]
    pub subject_id: Option<Uuid>,
    /// The client address.
    #[oai(nullable)]
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    #[oai(nullable)]
    pub user_agent: Option<String>,
    /// The request's `X-Request-Id`.
    #[oai(nullable)]
    pub request_id: Option<String>,
    /// The event's details: ids, names, counts and reasons, never a
    /// secret.
    pub details: serde_json::Value,
}

impl From<portcullis_domain::audit::AuditEntry> for AuditEventBody {
    fn from(entry: portcullis_domain::audit::AuditEntry) -> Self {
        Self {
            seq: entry.seq,
            at: entry.at,
            event: entry.event,
            actor_id: entry.actor_id.map(|id| id.as_uuid()),
            subject_id: entry.subject_id.map(|id| id.as_uuid()),
            ip: entry.ip,
            user_agent: entry.user_agent,
            request_id: entry.request_id,
            // The store keeps what the domain wrote, a JSON object; a row
            // that no longer parses is shown as its text rather than hidden.
            details: serde_json::from_str(&entry.details)
                .unwrap_or(serde_json::Value::String(entry.details)),
        }
    }
}

/// One page of the audit log, newest first.
#[derive(Debug, Object)]
#[oai(rename = "AuditPage")]
pub struct AuditPageBody {
    /// The events, newest first.
    pub items: Vec<AuditEventBody>,
    /// Pass as `cursor` to get the next (older) page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}
