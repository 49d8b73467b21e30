//! Accounts: the validated newtypes an account is made of. Email addresses
//! live in `email.rs`, passwords and their policy in `password.rs`.

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::email::EmailAddress;
use crate::error::FieldError;
use crate::scope::{Scope, ScopeSet};
use crate::unicode::is_format_control_or_separator;

pub(crate) const USERNAME_MIN: usize = 3;
const USERNAME_MAX: usize = 32;
const FULL_NAME_MAX: usize = 100;

/// A login name: 3–32 characters of `a-z 0-9 _ . -`, stored lower-case.
///
/// Parsing lower-cases ASCII letters, so `Alice` and `alice` are the same
/// account. `:` can never appear, which keeps HTTP Basic unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Parses and normalises a username.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let normalised = input.to_ascii_lowercase();
        let length = normalised.chars().count();
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&length) {
            return Err(FieldError::new(
                "username",
                format!("must be {USERNAME_MIN} to {USERNAME_MAX} characters long"),
            ));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if !normalised.chars().all(allowed) {
            return Err(FieldError::new(
                "username",
                "may contain only a-z, 0-9, '_', '.' and '-'",
            ));
        }
        Ok(Self(normalised))
    }

    /// The normalised (lower-case) username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: at most 100 characters, none of them a control, format
/// or line/paragraph-separator character (general categories Cc, Cf, Zl,
/// Zp), so a name cannot reorder the text around it (bidi overrides), hide
/// characters (zero-width joiners, U+FEFF) or break a line in a log or a UI.
///
/// ```
/// use portcullis_domain::FullName;
///
/// assert!(FullName::parse("Zoë Ōtani").is_ok());
/// assert!(FullName::parse("evil\u{202E}gpj.exe").is_err());
/// assert!(FullName::parse("two\u{2028}lines").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    /// Parses a display name.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        if input.chars().count() > FULL_NAME_MAX {
            return Err(FieldError::new(
                "full_name",
                format!("must be at most {FULL_NAME_MAX} characters long"),
            ));
        }
        if input.chars().any(is_format_control_or_separator) {
            return Err(FieldError::new(
                "full_name",
                "must not contain invisible, formatting or line-separator characters",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored password hash in PHC string format. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHashString(String);

impl PasswordHashString {
    /// Wraps a PHC string produced by a hasher or read from storage.
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHashString(<redacted>)")
    }
}

/// Identifies a user; a random UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(Uuid);

impl UserId {
    /// A new random user id.
    #[allow(
        clippy::disallowed_methods,
        reason = "the one place these ids are drawn"
    )]
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// Wraps an existing id.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What an account may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// An ordinary account: `profile` scope only.
    User,
    /// An administrator: `profile` and `admin` scopes.
    Admin,
}

impl Role {
    /// The role's name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "user" => Some(Self::User),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The scopes a credential of this role may carry.
    pub fn allowed_scopes(self) -> ScopeSet {
        match self {
            Self::User => ScopeSet::EMPTY.with(Scope::Profile),
            Self::Admin => ScopeSet::EMPTY.with(Scope::Profile).with(Scope::Admin),
        }
    }
}

/// An account as the rest of the system sees it: no secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable identifier.
    pub id: UserId,
    /// Login name, lower-case.
    pub username: Username,
    /// Contact address, unique case-insensitively.
    pub email: EmailAddress,
    /// Optional display name.
    pub full_name: Option<FullName>,
    /// What the account may be granted.
    pub role: Role,
    /// A disabled account cannot log in and its credentials stop working.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: OffsetDateTime,
}

/// A user together with the stored password hash, as loaded for a login.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    /// The account.
    pub user: User,
    /// Its password hash.
    pub password_hash: PasswordHashString,
}

/// An account to be inserted.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The account, with its new id.
    pub user: User,
    /// The hash of its first password.
    pub password_hash: PasswordHashString,
}

/// Changes to an account's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    /// New email address.
    pub email: Option<EmailAddress>,
    /// New display name; `Some(None)` clears it.
    pub full_name: Option<Option<FullName>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_is_lowercased_and_restricted_to_its_alphabet() {
        assert_eq!(
            Username::parse("Bob.Smith-2").map(|u| u.0),
            Ok("bob.smith-2".into())
        );
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("a".repeat(32).as_str()).is_ok());
        for bad in ["bob smith", "bob:smith", "bøb", "bob@x", "b\u{0}b"] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn full_name_refuses_format_control_and_separator_characters() {
        assert!(FullName::parse("Zoë Ōtani-Smith").is_ok());
        for bad in [
            "a\u{202E}b",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{200D}b",
            "a\u{FEFF}b",
            "a\u{7}b",
        ] {
            let error = FullName::parse(bad).map(|_| ());
            assert_eq!(
                error.map_err(|e| e.message),
                Err("must not contain invisible, formatting or line-separator characters".into()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn password_hashes_do_not_debug_print() {
        let hash = PasswordHashString::new("$argon2id$v=19$secret".into());
        assert!(!format!("{hash:?}").contains("secret"));
    }

    #[test]
    fn email_must_be_valid_and_at_most_254_characters() {
        assert!(EmailAddress::parse("a@example.com").is_ok());
        assert!(EmailAddress::parse("no-at-sign").is_err());
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
    }
}
