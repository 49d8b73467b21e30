//! Passwords: the secret type, its Unicode normalisation, and the policy a
//! new password must pass.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

use crate::account::{USERNAME_MIN, Username};
use crate::email::EmailAddress;
use crate::error::FieldError;
use crate::unicode::{is_effective_password_character, nfkc, nfkc_lowercase};

/// The longest password accepted, in Unicode code points.
pub const MAX_PASSWORD_LENGTH: usize = 256;
/// No deployment may configure a minimum password length below this.
pub const MIN_PASSWORD_LENGTH_FLOOR: usize = 8;

/// A password in memory. Never printed by `Debug`, zeroed on drop.
///
/// Having a `Password` says nothing about its strength: new passwords go
/// through [`PasswordPolicy::check`]; passwords presented at login are
/// verified whole, never truncated or case-folded. New passwords are hashed
/// in their NFKC form ([`nfkc`](Self::nfkc), NIST SP 800-63B-4 §3.1.1.2), so
/// the same password typed as composed or decomposed characters, or with
/// full-width digits, is the same password.
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

    /// The password in Unicode Normalization Form KC: the form every new
    /// password is checked and hashed in. The copy is a `Password` too
    /// (redacted, zeroed on drop).
    ///
    /// ```
    /// use portcullis_domain::Password;
    ///
    /// let decomposed = Password::new("cafe\u{301} au lait".to_owned());
    /// assert!(!decomposed.is_nfkc());
    /// assert_eq!(decomposed.nfkc().expose(), "café au lait");
    /// assert!(decomposed.nfkc().is_nfkc());
    /// ```
    pub fn nfkc(&self) -> Password {
        Password::new(nfkc(self.expose()))
    }

    /// Whether the password is already in NFKC (every ASCII password is), so
    /// that [`nfkc`](Self::nfkc) would not change it.
    pub fn is_nfkc(&self) -> bool {
        unicode_normalization::is_nfkc(self.expose())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The rules a new password must follow (NIST SP 800-63B-4), applied to its
/// NFKC form: a minimum and a maximum length counted in code points (of the
/// typed form too), no
/// composition rules, no trivial pattern ([`find_trivial_pattern`]), not on
/// the bundled list of common passwords (also with a trailing run of digits
/// removed), and not containing the account's own username or email local
/// part.
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
    ///
    /// The rules apply to the password's NFKC form whatever form it is given
    /// in; the caller must hash that same form ([`Password::nfkc`]).
    pub fn check_field(
        &self,
        password: &Password,
        field: &'static str,
        username: &Username,
        email: &EmailAddress,
    ) -> Result<(), FieldError> {
        // Both spellings must fit the bounds: the one typed (what the
        // document's minLength/maxLength and the user count) and the NFKC
        // one that is stored (normalisation can lengthen or shorten it).
        let typed_length = password.char_count();
        let password = password.nfkc();
        let stored_length = password.char_count();
        if typed_length.min(stored_length) < self.min_length {
            return Err(FieldError::new(
                field,
                format!("must be at least {} characters long", self.min_length),
            ));
        }
        if typed_length.max(stored_length) > MAX_PASSWORD_LENGTH {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_PASSWORD_LENGTH} characters long"),
            ));
        }
        if let Some(pattern) = find_trivial_pattern(password.expose(), self.min_length) {
            return Err(FieldError::new(field, pattern.message()));
        }
        if is_common_password(password.expose())
            || is_common_password_with_digits_appended(password.expose())
        {
            return Err(FieldError::new(
                field,
                "is too common: it appears on a list of frequently used passwords",
            ));
        }
        // Compared folded, and with spaces and invisible characters taken
        // out, so that `ＡＬＩＣＥ`, `ali\u{200B}ce` or `a l i c e` still
        // contain `alice`.
        let folded: String = nfkc_lowercase(password.expose())
            .chars()
            .filter(|c| !c.is_whitespace() && !crate::unicode::is_format_control_or_separator(*c))
            .collect();
        if folded.contains(username.as_str()) {
            return Err(FieldError::new(field, "must not contain the username"));
        }
        // A one- or two-letter local part would forbid most passwords while
        // adding nothing an attacker could guess from it; the username has the
        // same three-character floor.
        let local_part = email.canonical_local_part();
        if local_part.chars().count() >= USERNAME_MIN && folded.contains(local_part) {
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

/// A pattern that makes a password trivial to guess whatever its length
/// (NIST SP 800-63B: "repetitive or sequential characters").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrivialPattern {
    /// Fewer than five different effective characters.
    TooFewDistinctCharacters,
    /// One character repeated, or a run of consecutive characters, makes up
    /// more than half of the password.
    LongRun,
    /// The whole password is a unit shorter than the minimum length,
    /// repeated.
    RepeatedUnit,
}

impl TrivialPattern {
    /// The rule as a message for the client (it never contains the password).
    pub fn message(self) -> &'static str {
        match self {
            Self::TooFewDistinctCharacters => "uses too few different characters",
            Self::LongRun => {
                "is too easy to guess: more than half of it is one character repeated \
                 or a run of consecutive characters"
            }
            Self::RepeatedUnit => "is too easy to guess: it is a short pattern repeated",
        }
    }
}

/// The fewest different effective characters a password may have.
const MIN_DISTINCT_CHARACTERS: usize = 5;

/// Which trivial pattern `password` (taken in NFKC) has, if any, for a
/// policy whose minimum length is `min_length`.
///
/// The rules look at *effective characters*: code points that are not
/// White_Space, not general category Cf and not combining marks (Mn, Mc,
/// Me), compared lower-cased. The password is refused when
/// 1. it has fewer than 5 different effective characters;
/// 2. the longest run of effective characters that repeat one character,
///    or that ascend or descend by one code point each (digits wrap:
///    `…8901…`, `…1098…`), is longer than half the password's length in
///    code points;
/// 3. its effective characters are a unit shorter than `min_length`
///    repeated at least twice.
///
/// ```
/// use portcullis_domain::{TrivialPattern, find_trivial_pattern};
///
/// assert_eq!(
///     find_trivial_pattern("aaaaaaaaaaaaaab", 15),
///     Some(TrivialPattern::TooFewDistinctCharacters)
/// );
/// assert_eq!(find_trivial_pattern("x1234567890123y", 15), Some(TrivialPattern::LongRun));
/// assert_eq!(find_trivial_pattern("hunter2hunter2hunter2", 15), Some(TrivialPattern::RepeatedUnit));
/// assert_eq!(find_trivial_pattern("correct horse battery staple", 15), None);
/// ```
pub fn find_trivial_pattern(password: &str, min_length: usize) -> Option<TrivialPattern> {
    let normalised = nfkc(password);
    let length = normalised.chars().count();
    let effective: Vec<char> = normalised
        .to_lowercase()
        .chars()
        .filter(|c| is_effective_password_character(*c))
        .collect();
    let distinct: HashSet<char> = effective.iter().copied().collect();
    if distinct.len() < MIN_DISTINCT_CHARACTERS {
        return Some(TrivialPattern::TooFewDistinctCharacters);
    }
    if 2 * longest_run(&effective) > length {
        return Some(TrivialPattern::LongRun);
    }
    let count = effective.len();
    let repeats = (1..min_length.min(count)).any(|unit| {
        count.is_multiple_of(unit)
            && count / unit >= 2
            && effective
                .iter()
                .enumerate()
                .all(|(i, c)| *c == effective[i % unit])
    });
    repeats.then_some(TrivialPattern::RepeatedUnit)
}

/// Whether `password` has a trivial pattern under the default minimum
/// length ([`find_trivial_pattern`] with
/// [`PasswordPolicy::DEFAULT_MIN_LENGTH`]).
///
/// ```
/// use portcullis_domain::is_repetitive_or_sequential;
///
/// assert!(is_repetitive_or_sequential("123456789012345"));
/// assert!(is_repetitive_or_sequential("abababababababab"));
/// assert!(is_repetitive_or_sequential("aaaaaaaaaaaaaab"));
/// assert!(!is_repetitive_or_sequential("correct horse battery staple"));
/// ```
pub fn is_repetitive_or_sequential(password: &str) -> bool {
    find_trivial_pattern(password, PasswordPolicy::DEFAULT_MIN_LENGTH).is_some()
}

/// The length of the longest run in which each character repeats the one
/// before it, or each steps by the same one code point up or down.
fn longest_run(chars: &[char]) -> usize {
    let step = |a: char, b: char| -> i64 {
        let (a, b) = (i64::from(u32::from(a)), i64::from(u32::from(b)));
        let digits = i64::from(u32::from('0'))..=i64::from(u32::from('9'));
        if digits.contains(&a) && digits.contains(&b) {
            // Digits wrap: ...8, 9, 0, 1... and ...1, 0, 9, 8...
            match (b - a).rem_euclid(10) {
                9 => -1,
                d => d,
            }
        } else {
            b - a
        }
    };
    let mut longest = usize::from(!chars.is_empty());
    // Current run lengths for a step of 0 (repeat), +1 and -1.
    let mut runs = [1_usize; 3];
    for pair in chars.windows(2) {
        let d = step(pair[0], pair[1]);
        for (run, direction) in runs.iter_mut().zip([0, 1, -1]) {
            *run = if d == direction { *run + 1 } else { 1 };
            longest = longest.max(*run);
        }
    }
    longest
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

/// Whether `password` is a common password followed by a run of digits
/// (`password12345678`): the list holds short passwords, and padding one
/// with digits to reach the minimum length is the usual way around it.
fn is_common_password_with_digits_appended(password: &str) -> bool {
    let trimmed = password.trim();
    let stem = trimmed.trim_end_matches(|c: char| c.is_ascii_digit());
    !stem.is_empty() && stem.len() < trimmed.len() && is_common_password(stem)
}

/// How many passwords the bundled list holds.
pub fn common_password_count() -> usize {
    COMMON_PASSWORDS.len()
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

    fn refusal(password: &str) -> Option<String> {
        let (username, email) = alice();
        PasswordPolicy::default()
            .check(&Password::new(password.to_owned()), &username, &email)
            .err()
            .map(|error| error.message)
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
            "abcdefghijklmnoq-x",
        ] {
            let error = policy.check(&Password::new(trivial.into()), &username, &email);
            assert!(error.is_err(), "{trivial:?} should be refused");
        }
        for fine in [
            "correct horse battery staple",
            "1234567890 banana split",
            "abcdef horse battery staple",
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
    fn the_review_examples_are_refused_with_the_rule_they_break() {
        let cases = [
            ("aaaaaaaaaaaaaab", "uses too few different characters"),
            ("               ", "uses too few different characters"),
            (
                "password12345678",
                "is too common: it appears on a list of frequently used passwords",
            ),
            (
                "hunter2hunter2hunter2",
                "is too easy to guess: it is a short pattern repeated",
            ),
            (
                "x\u{300}\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}\u{307}\u{308}\u{309}\u{30A}\u{30B}\u{30C}\u{30D}",
                "uses too few different characters",
            ),
            (
                "qwzabcdefghijkl",
                "is too easy to guess: more than half of it is one character repeated \
                 or a run of consecutive characters",
            ),
        ];
        for (password, expected) in cases {
            assert_eq!(refusal(password).as_deref(), Some(expected), "{password:?}");
        }
    }

    #[test]
    fn the_username_is_found_through_full_width_and_zero_width_spellings() {
        for spelling in [
            "battery ＡＬＩＣＥ staple",
            "battery ali\u{200B}ce staple",
            "battery a l i c e staple",
        ] {
            assert_eq!(
                refusal(spelling).as_deref(),
                Some("must not contain the username"),
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn the_policy_counts_length_after_normalisation() {
        // Fifteen decomposed letters are fifteen composed code points.
        let decomposed = "e\u{301}a\u{300}u\u{308}o\u{308}n\u{303}c\u{327}a\u{30A}".to_owned()
            + "øæßi\u{302}e\u{302}a\u{302}o\u{302}u\u{302}";
        assert_eq!(decomposed.chars().count(), 27);
        assert_eq!(refusal(&decomposed), None);
        // A ligature expands under NFKC: "ﬀ" is two letters.
        assert_eq!(nfkc("ﬀ").chars().count(), 2);
    }

    #[test]
    fn unit_repetition_counts_only_units_shorter_than_the_minimum() {
        let unit = "abcdefgh1";
        assert_eq!(
            find_trivial_pattern(&unit.repeat(2), 10),
            Some(TrivialPattern::RepeatedUnit)
        );
        assert_eq!(find_trivial_pattern(&unit.repeat(2), 9), None);
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let password = Password::new("hunter2hunter2hunter2".into());
        assert!(!format!("{password:?}").contains("hunter2"));
        assert!(!format!("{:?}", password.nfkc()).contains("hunter2"));
    }
}
