//! User-owned API keys.

use std::fmt;

use time::OffsetDateTime;

use crate::account::UserId;
use crate::error::FieldError;
use crate::scope::ScopeSet;

/// What every API key starts with, so secret scanners can recognise it.
pub const API_KEY_PREFIX: &str = "pcl_";
/// Characters of a key shown in listings: the `pcl_` prefix and 8 more.
pub const API_KEY_SHOWN_CHARS: usize = 12;
/// The longest key lifetime that can be asked for.
pub const MAX_API_KEY_DAYS: u32 = 3650;
const API_KEY_SECRET_CHARS: usize = 43;
const API_KEY_NAME_MAX: usize = 64;

crate::id::uuid_id!(
    /// Identifies an API key.
    ApiKeyId
);

/// The hash of an API key: the only form in which it is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyHash(Vec<u8>);

impl ApiKeyHash {
    /// Wraps a digest computed by a token issuer.
    pub fn from_digest(digest: Vec<u8>) -> Self {
        Self(digest)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyHash(..)")
    }
}

/// Whether `key` has the shape of a Portcullis API key: `pcl_` and 43
/// base64url characters (256 bits). Anything else is refused before any
/// database lookup.
pub fn is_well_formed_api_key(key: &str) -> bool {
    key.strip_prefix(API_KEY_PREFIX).is_some_and(|secret| {
        secret.len() == API_KEY_SECRET_CHARS
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A label for an API key: 1–64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    /// Parses a key name.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let length = input.trim().chars().count();
        if length == 0 || input.chars().count() > API_KEY_NAME_MAX {
            return Err(FieldError::new(
                "name",
                format!("must be 1 to {API_KEY_NAME_MAX} characters long"),
            ));
        }
        if input.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key to be stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Owner.
    pub user_id: UserId,
    /// Label.
    pub name: ApiKeyName,
    /// The first [`API_KEY_SHOWN_CHARS`] characters, shown in listings.
    pub prefix: String,
    /// Hash of the whole key.
    pub key_hash: ApiKeyHash,
    /// What the key may do: a subset of the owner's allowed scopes.
    pub scopes: ScopeSet,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Optional expiry.
    pub expires_at: Option<OffsetDateTime>,
}

/// A key as listed to its owner; never contains the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Key id.
    pub id: ApiKeyId,
    /// Label.
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// Scopes.
    pub scopes: ScopeSet,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last use (updated at most once a minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// Optional expiry.
    pub expires_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_prefixed_43_character_base64url_keys_are_well_formed() {
        let good = format!("pcl_{}", "A".repeat(43));
        assert!(is_well_formed_api_key(&good));
        assert!(!is_well_formed_api_key(&"A".repeat(47)));
        assert!(!is_well_formed_api_key(&format!("pcl_{}", "A".repeat(42))));
        assert!(!is_well_formed_api_key(&format!("pcl_{}=", "A".repeat(42))));
        assert!(!is_well_formed_api_key(&format!("PCL_{}", "A".repeat(43))));
    }

    #[test]
    fn key_names_are_bounded_and_printable() {
        assert!(ApiKeyName::parse("ci deploy").is_ok());
        assert!(ApiKeyName::parse("").is_err());
        assert!(ApiKeyName::parse("   ").is_err());
        assert!(ApiKeyName::parse(&"x".repeat(65)).is_err());
        assert!(ApiKeyName::parse("a\nb").is_err());
    }
}
