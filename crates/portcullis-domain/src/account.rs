//! Accounts: the validated newtypes an account is made of. Email addresses
//! live in `email.rs`, passwords and their policy in `password.rs`.

use std::fmt;

use time::OffsetDateTime;

use crate::email::EmailAddress;
use crate::error::FieldError;
use crate::password::{Password, PasswordPolicy};
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

crate::id::uuid_id!(
    /// Identifies a user; a random UUID.
    UserId
);

/// What an account may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// An ordinary account: `profile` scope only.
    User,
    /// An administrator: `profile`, `admin` and `introspect` scopes.
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

    /// The role a list of role names grants, as the admin API takes it: the
    /// list must be non-empty and name only `user` and `admin`; naming
    /// `admin` makes an admin. Otherwise an error on `field`.
    pub fn parse_list<S: AsRef<str>>(names: &[S], field: &'static str) -> Result<Self, FieldError> {
        let parsed: Option<Vec<Role>> = names
            .iter()
            .map(|name| Self::parse(name.as_ref()))
            .collect();
        match parsed {
            Some(roles) if roles.contains(&Role::Admin) => Ok(Role::Admin),
            Some(roles) if !roles.is_empty() => Ok(Role::User),
            _ => Err(FieldError::new(
                field,
                "must list `user` and/or `admin`, nothing else",
            )),
        }
    }

    /// The scopes a credential of this role may carry. `admin` and
    /// `introspect` are an administrator's only: a user's grant, asked for
    /// or defaulted, can never hold them.
    pub fn allowed_scopes(self) -> ScopeSet {
        match self {
            Self::User => ScopeSet::EMPTY.with(Scope::Profile),
            Self::Admin => ScopeSet::EMPTY
                .with(Scope::Profile)
                .with(Scope::Admin)
                .with(Scope::Introspect),
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

/// A new account's identity, parsed from what was submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Login name.
    pub username: Username,
    /// Contact address.
    pub email: EmailAddress,
    /// Optional display name.
    pub full_name: Option<FullName>,
}

impl NewAccount {
    /// Parses a registration's fields and checks its password against
    /// `policy` (which needs the parsed username and email, so it is judged
    /// only when both parse). Every invalid field is reported at once, in
    /// the order username, email, full name, password.
    ///
    /// ```
    /// use portcullis_domain::{NewAccount, Password, PasswordPolicy};
    ///
    /// let policy = PasswordPolicy::default();
    /// let password = Password::new("correct horse battery staple".to_owned());
    /// let account = NewAccount::parse("Alice", "alice@example.com", None, &password, &policy)
    ///     .expect("valid");
    /// assert_eq!(account.username.as_str(), "alice");
    ///
    /// let errors = NewAccount::parse("a", "nope", None, &password, &policy).unwrap_err();
    /// let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
    /// assert_eq!(fields, ["username", "email"]);
    /// ```
    pub fn parse(
        username: &str,
        email: &str,
        full_name: Option<&str>,
        password: &Password,
        policy: &PasswordPolicy,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let username = Username::parse(username).map_err(|e| errors.push(e)).ok();
        let email = EmailAddress::parse(email).map_err(|e| errors.push(e)).ok();
        let full_name = full_name
            .map(FullName::parse)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        if let (Some(username), Some(email)) = (&username, &email)
            && let Err(error) = policy.check(password, username, email)
        {
            errors.push(error);
        }
        match (username, email, errors.is_empty()) {
            (Some(username), Some(email), true) => Ok(Self {
                username,
                email,
                full_name,
            }),
            _ => Err(errors),
        }
    }
}

/// Changes to an account's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    /// New email address.
    pub email: Option<EmailAddress>,
    /// New display name; `Some(None)` clears it.
    pub full_name: Option<Option<FullName>>,
}

impl ProfileChanges {
    /// Parses the optional profile fields of an update (absent: unchanged;
    /// `Some(None)` name: cleared), adding every error to `errors` so that
    /// a caller can report them with its own fields' errors.
    pub fn parse(
        email: Option<&str>,
        full_name: Option<Option<&str>>,
        errors: &mut Vec<FieldError>,
    ) -> Self {
        let email = match email.map(EmailAddress::parse) {
            Some(Ok(email)) => Some(email),
            Some(Err(error)) => {
                errors.push(error);
                None
            }
            None => None,
        };
        let full_name = match full_name {
            Some(Some(name)) => match FullName::parse(name) {
                Ok(name) => Some(Some(name)),
                Err(error) => {
                    errors.push(error);
                    None
                }
            },
            Some(None) => Some(None),
            None => None,
        };
        Self { email, full_name }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_list_grants_admin_when_it_names_admin_and_refuses_anything_else() {
        assert_eq!(Role::parse_list(&["user"], "roles"), Ok(Role::User));
        assert_eq!(
            Role::parse_list(&["user", "admin"], "roles"),
            Ok(Role::Admin)
        );
        assert_eq!(Role::parse_list(&["admin"], "roles"), Ok(Role::Admin));
        for bad in [&[][..], &["root"], &["user", "Admin"], &["user admin"]] {
            let error = Role::parse_list(bad, "roles").expect_err("refused");
            assert_eq!(error.field, "roles", "{bad:?}");
        }
    }

    #[test]
    fn profile_changes_parse_every_field_and_collect_every_error() {
        let mut errors = Vec::new();
        let changes = ProfileChanges::parse(Some("a@example.com"), Some(None), &mut errors);
        assert!(errors.is_empty());
        assert_eq!(
            changes.email.map(|e| e.to_string()).as_deref(),
            Some("a@example.com")
        );
        assert_eq!(changes.full_name, Some(None));
        let changes = ProfileChanges::parse(Some("nope"), Some(Some("bad\u{0}name")), &mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["email", "full_name"]);
        assert!(changes.email.is_none() && changes.full_name.is_none());
    }

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
