//! Accounts: the validated newtypes an account is made of, and the password policy.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;
use validator::ValidateEmail;

use crate::error::FieldError;
use crate::scope::{Scope, ScopeSet};

/// The longest password accepted, in Unicode code points.
pub const MAX_PASSWORD_LENGTH: usize = 256;
/// No deployment may configure a minimum password length below this.
pub const MIN_PASSWORD_LENGTH_FLOOR: usize = 8;

const USERNAME_MIN: usize = 3;
const USERNAME_MAX: usize = 32;
const EMAIL_MAX: usize = 254;
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

/// A syntactically valid email address of at most 254 characters.
///
/// The address keeps the case it was given in; uniqueness is enforced
/// case-insensitively by the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an email address (HTML5 / WHATWG syntax, as the `validator` crate checks it).
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        if input.chars().count() > EMAIL_MAX {
            return Err(FieldError::new(
                "email",
                format!("must be at most {EMAIL_MAX} characters long"),
            ));
        }
        if !input.validate_email() {
            return Err(FieldError::new("email", "must be a valid email address"));
        }
        Ok(Self(input.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the last `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: at most 100 characters, no control characters.
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
        if input.chars().any(char::is_control) {
            return Err(FieldError::new(
                "full_name",
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

/// A password in memory. Never printed by `Debug`, zeroed on drop.
///
/// Having a `Password` says nothing about its strength: new passwords go
/// through [`PasswordPolicy::check`]; passwords presented at login are
/// verified whole, never truncated or case-folded.
pub struct Password(SecretString);

impl Password {
    /// Wraps a password as submitted.
    pub fn new(password: String) -> Self {
        Self(SecretString::from(password))
    }

    /// The secret itself, for hashing.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Length in Unicode code points.
    pub fn char_count(&self) -> usize {
        self.expose().chars().count()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The rules a new password must follow (NIST SP 800-63B-4): a minimum and a
/// maximum length counted in code points, no composition rules, not on the
/// bundled list of common passwords, and not containing the account's own
/// username or email local part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_length: usize,
}

impl PasswordPolicy {
    /// The NIST SP 800-63B-4 minimum for passwords used as a single factor.
    pub const DEFAULT_MIN_LENGTH: usize = 15;

    /// A policy with the given minimum length.
    ///
    /// Returns `None` when `min_length` is below [`MIN_PASSWORD_LENGTH_FLOOR`] or
    /// above [`MAX_PASSWORD_LENGTH`].
    pub fn with_min_length(min_length: usize) -> Option<Self> {
        (MIN_PASSWORD_LENGTH_FLOOR..=MAX_PASSWORD_LENGTH)
            .contains(&min_length)
            .then_some(Self { min_length })
    }

    /// The configured minimum length.
    pub fn min_length(&self) -> usize {
        self.min_length
    }

    /// Checks a new password for an account. The error names the broken rule
    /// and never contains the password.
    pub fn check(
        &self,
        password: &Password,
        username: &Username,
        email: &EmailAddress,
    ) -> Result<(), FieldError> {
        self.check_field(password, "password", username, email)
    }

    /// Like [`check`](Self::check), reporting the error under `field`.
    pub fn check_field(
        &self,
        password: &Password,
        field: &'static str,
        username: &Username,
        email: &EmailAddress,
    ) -> Result<(), FieldError> {
        let length = password.char_count();
        if length < self.min_length {
            return Err(FieldError::new(
                field,
                format!("must be at least {} characters long", self.min_length),
            ));
        }
        if length > MAX_PASSWORD_LENGTH {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_PASSWORD_LENGTH} characters long"),
            ));
        }
        if is_repetitive_or_sequential(password.expose()) {
            return Err(FieldError::new(
                field,
                "is too easy to guess: it repeats a short pattern or runs in sequence",
            ));
        }
        if is_common_password(password.expose()) {
            return Err(FieldError::new(
                field,
                "is too common: it appears on a list of frequently used passwords",
            ));
        }
        let folded = password.expose().to_lowercase();
        if folded.contains(username.as_str()) {
            return Err(FieldError::new(field, "must not contain the username"));
        }
        // A one- or two-letter local part would forbid most passwords while
        // adding nothing an attacker could guess from it; the username has the
        // same three-character floor.
        let local_part = email.local_part().to_lowercase();
        if local_part.chars().count() >= USERNAME_MIN && folded.contains(&local_part) {
            return Err(FieldError::new(
                field,
                "must not contain the email address's local part",
            ));
        }
        Ok(())
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: Self::DEFAULT_MIN_LENGTH,
        }
    }
}

/// The bundled list of commonly used passwords: 19,640 lower-case entries
/// taken from Django 5.2.19 (BSD-3-Clause; see `data/COMMON-PASSWORDS-LICENSE`).
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// Whether `password` is on the bundled list of commonly used passwords
/// (compared after trimming and lower-casing, as the list is lower-case).
///
/// ```
/// assert!(portcullis_domain::is_common_password("Password1"));
/// assert!(!portcullis_domain::is_common_password("purple monkey dishwasher 1987"));
/// ```
pub fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.trim().to_lowercase().as_str())
}

/// Whether `password` is a short pattern repeated (`aaaa…`, `abcabc…`,
/// `1212…`) or a run of consecutive characters (`abcdef…`, `987654…`, digits
/// wrapping `…7890123…`): the "repetitive or sequential characters" that
/// NIST SP 800-63B asks verifiers to refuse, whatever their length, which a
/// list of common passwords cannot enumerate.
///
/// ```
/// use portcullis_domain::is_repetitive_or_sequential;
///
/// assert!(is_repetitive_or_sequential("123456789012345"));
/// assert!(is_repetitive_or_sequential("abababababababab"));
/// assert!(!is_repetitive_or_sequential("correct horse battery staple"));
/// ```
pub fn is_repetitive_or_sequential(password: &str) -> bool {
    let chars: Vec<char> = password.to_lowercase().chars().collect();
    let repeats_unit = (1..=4).any(|unit| {
        chars.len() > unit && chars.iter().enumerate().all(|(i, c)| *c == chars[i % unit])
    });
    let step = |a: char, b: char| -> Option<i64> {
        let (a, b) = (i64::from(u32::from(a)), i64::from(u32::from(b)));
        let digits = i64::from(u32::from('0'))..=i64::from(u32::from('9'));
        if digits.contains(&a) && digits.contains(&b) {
            // Digits wrap: ...8, 9, 0, 1... and ...1, 0, 9, 8...
            Some((b - a).rem_euclid(10)).map(|d| if d == 9 { -1 } else { d })
        } else {
            Some(b - a)
        }
    };
    let runs_in_sequence = chars.len() > 2
        && [1, -1].iter().any(|direction| {
            chars
                .windows(2)
                .all(|pair| step(pair[0], pair[1]) == Some(*direction))
        });
    repeats_unit || runs_in_sequence
}

/// How many passwords the bundled list holds.
pub fn common_password_count() -> usize {
    COMMON_PASSWORDS.len()
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

    fn alice() -> (Username, EmailAddress) {
        (
            Username::parse("alice").unwrap_or_else(|e| panic!("{e}")),
            EmailAddress::parse("alice.smith@example.com").unwrap_or_else(|e| panic!("{e}")),
        )
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
    fn email_must_be_valid_and_at_most_254_characters() {
        assert!(EmailAddress::parse("a@example.com").is_ok());
        assert!(EmailAddress::parse("no-at-sign").is_err());
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn password_length_is_counted_in_code_points() {
        let policy = PasswordPolicy::with_min_length(15).unwrap_or_default();
        let (username, email) = alice();
        // 15 code points, 30 bytes: long enough.
        let accented = Password::new("éàüöñçåøæßîêâôû".to_owned());
        assert_eq!(policy.check(&accented, &username, &email), Ok(()));
        let short = Password::new("éàüöñçåøæßîêâô".to_owned());
        assert!(policy.check(&short, &username, &email).is_err());
        let long = Password::new("x".repeat(MAX_PASSWORD_LENGTH + 1));
        assert!(policy.check(&long, &username, &email).is_err());
    }

    #[test]
    fn password_may_not_contain_username_or_email_local_part() {
        let policy = PasswordPolicy::default();
        let (username, email) = alice();
        let with_username = Password::new("correct horse ALICE staple".into());
        let error = policy.check(&with_username, &username, &email);
        assert_eq!(
            error.map_err(|e| e.message),
            Err("must not contain the username".into())
        );
        let with_local_part = Password::new("xx-Alice.Smith-battery-staple".into());
        assert!(policy.check(&with_local_part, &username, &email).is_err());
        let fine = Password::new("correct horse battery staple".into());
        assert_eq!(policy.check(&fine, &username, &email), Ok(()));
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        assert!(common_password_count() >= 10_000);
        let policy = PasswordPolicy::with_min_length(8).unwrap_or_default();
        let (username, email) = alice();
        for common in ["12345678", "PASSWORD1", " iloveyou "] {
            let error = policy.check(&Password::new(common.into()), &username, &email);
            assert!(error.is_err(), "{common:?} should be refused");
        }
        let fine = Password::new("purple monkey dishwasher".into());
        assert_eq!(policy.check(&fine, &username, &email), Ok(()));
    }

    #[test]
    fn repeated_patterns_and_sequences_are_refused_at_any_length() {
        let policy = PasswordPolicy::default();
        let (username, email) = alice();
        for trivial in [
            "aaaaaaaaaaaaaaaa",
            "abcabcabcabcabcabc",
            "1212121212121212",
            "123456789012345",
            "zyxwvutsrqponmlk",
            "9876543210987654",
            "ABCDEFGHIJKLMNOP",
        ] {
            let error = policy.check(&Password::new(trivial.into()), &username, &email);
            assert!(error.is_err(), "{trivial:?} should be refused");
        }
        for fine in [
            "correct horse battery staple",
            "abcdefghijklmnoq-x",
            "1234567890 banana split",
        ] {
            let result = policy.check(&Password::new(fine.into()), &username, &email);
            assert_eq!(result, Ok(()), "{fine:?}");
        }
    }

    #[test]
    fn policy_refuses_minimums_below_eight() {
        assert!(PasswordPolicy::with_min_length(7).is_none());
        assert_eq!(
            PasswordPolicy::with_min_length(8).map(|p| p.min_length()),
            Some(8)
        );
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let password = Password::new("hunter2hunter2hunter2".into());
        assert!(!format!("{password:?}").contains("hunter2"));
        let hash = PasswordHashString::new("$argon2id$v=19$secret".into());
        assert!(!format!("{hash:?}").contains("secret"));
    }
}
