//! Email addresses: which are accepted, how they are shown, and the
//! canonical key that decides whether two spellings are one address.

use std::fmt;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use validator::ValidateEmail;

use crate::error::FieldError;
use crate::unicode::{is_invisible_or_formatting, nfc, nfkc, nfkc_lowercase};

const EMAIL_MAX: usize = 254;
const LOCAL_PART_MAX: usize = 64;

/// A valid email address of at most 254 characters, with its canonical key.
///
/// The address is kept as given for display, except that the local part is
/// NFC-normalised. [`canonical`](Self::canonical) is the key uniqueness is
/// decided on: `lowercase(NFKC(local))` + `@` + the domain's Unicode form
/// (UTS #46, lower-case), so full-width letters, the Kelvin sign, decomposed
/// accents, non-ASCII case and a punycode domain all name the address they
/// imitate.
///
/// ```
/// use portcullis_domain::EmailAddress;
///
/// let plain = EmailAddress::parse("Alice@Example.com")?;
/// let wide = EmailAddress::parse("ＡＬＩＣＥ@example.com")?;
/// assert_eq!(plain.canonical(), "alice@example.com");
/// assert_eq!(wide.canonical(), plain.canonical());
///
/// let unicode = EmailAddress::parse("user@bücher.example")?;
/// let punycode = EmailAddress::parse("user@xn--bcher-kva.example")?;
/// assert_eq!(unicode.canonical(), punycode.canonical());
///
/// // Invisible characters are refused rather than folded away.
/// assert!(EmailAddress::parse("ali\u{200B}ce@example.com").is_err());
/// # Ok::<(), portcullis_domain::FieldError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    display: String,
    canonical: String,
}

impl EmailAddress {
    /// Parses an email address.
    ///
    /// The local part is HTML5 (WHATWG) syntax extended to Unicode (RFC
    /// 6531): the ASCII characters HTML5 allows, plus any non-ASCII character
    /// except invisible or formatting ones (general categories Cf, Cc, Zl,
    /// Zp, and default-ignorable code points such as variation selectors),
    /// and its NFKC form must obey the same rule. The domain must be valid
    /// under UTS #46 (non-transitional, STD3 ASCII rules, DNS lengths) and
    /// written in its normal form: lower-cased, it must equal its A-label
    /// (punycode) or its U-label (Unicode) form.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        if input.chars().count() > EMAIL_MAX {
            return Err(FieldError::new(
                "email",
                format!("must be at most {EMAIL_MAX} characters long"),
            ));
        }
        let invalid = || FieldError::new("email", "must be a valid email address");
        let (local, domain) = input.rsplit_once('@').ok_or_else(invalid)?;
        if local.chars().any(is_invisible_or_formatting) {
            return Err(FieldError::new(
                "email",
                "must not contain invisible or formatting characters",
            ));
        }
        let local = nfc(local);
        let canonical_local = nfkc_lowercase(&local);
        let local_length = local.chars().count();
        if !(1..=LOCAL_PART_MAX).contains(&local_length)
            || !local.chars().all(is_local_part_character)
            || !nfkc(&local).chars().all(is_local_part_character)
        {
            return Err(invalid());
        }
        let canonical_domain = canonical_domain(domain)?;
        let display = format!("{local}@{domain}");
        // NFC rarely lengthens text, but it can: the limit holds for what is
        // stored, too.
        if display.chars().count() > EMAIL_MAX {
            return Err(FieldError::new(
                "email",
                format!("must be at most {EMAIL_MAX} characters long"),
            ));
        }
        Ok(Self {
            display,
            canonical: format!("{canonical_local}@{canonical_domain}"),
        })
    }

    /// An address read back from storage that no longer parses under the
    /// current rules (it was accepted by an older version). It is kept as
    /// stored, so that the account stays readable; its canonical form is the
    /// NFKC lower-case of the whole text. Never use this for new input.
    pub fn from_storage_unchecked(stored: &str) -> Self {
        Self {
            display: stored.to_owned(),
            canonical: nfkc_lowercase(stored),
        }
    }

    /// The address as given (local part in NFC).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The canonical key: two addresses with equal keys are the same address.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The part before the last `@`, as given (NFC).
    pub fn local_part(&self) -> &str {
        self.display
            .rsplit_once('@')
            .map_or(&self.display, |(local, _)| local)
    }

    /// The canonical key's local part: `lowercase(NFKC(local))`.
    pub fn canonical_local_part(&self) -> &str {
        self.canonical
            .rsplit_once('@')
            .map_or(&self.canonical, |(local, _)| local)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// Normalises an admin search term the way canonical keys are built, so that
/// it can be matched as a literal substring of a username or a canonical
/// email key: NFKC, lower-case, ideographic full stops as `.`, and every
/// `xn--` label (between `.` and `@`) that is valid punycode decoded to
/// Unicode.
///
/// ```
/// use portcullis_domain::normalise_search_term;
///
/// assert_eq!(normalise_search_term("ＡＬＩＣＥ@EXAMPLE.COM"), "alice@example.com");
/// assert_eq!(normalise_search_term("XN--BCHER-KVA.example"), "bücher.example");
/// ```
pub fn normalise_search_term(term: &str) -> String {
    let folded: String = nfkc_lowercase(term)
        .chars()
        .map(|c| {
            if matches!(c, '\u{3002}' | '\u{FF61}') {
                '.'
            } else {
                c
            }
        })
        .collect();
    let mut normalised = String::with_capacity(folded.len());
    let mut label = String::new();
    for c in folded.chars().chain(std::iter::once('\0')) {
        if matches!(c, '.' | '@' | '\0') {
            normalised.push_str(&decode_punycode_label(&label));
            label.clear();
            if c != '\0' {
                normalised.push(c);
            }
        } else {
            label.push(c);
        }
    }
    normalised
}

/// `label` in Unicode when it is a valid `xn--` label, else unchanged.
fn decode_punycode_label(label: &str) -> String {
    if !label.starts_with("xn--") {
        return label.to_owned();
    }
    let (unicode, result) =
        Uts46::new().to_unicode(label.as_bytes(), AsciiDenyList::STD3, Hyphens::Allow);
    if result.is_ok() {
        unicode.into_owned()
    } else {
        label.to_owned()
    }
}

/// Whether `c` may appear in a local part: an ASCII character of the HTML5
/// local-part set, or a non-ASCII character that is neither white space nor
/// invisible.
fn is_local_part_character(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c)
    } else {
        !c.is_whitespace() && !is_invisible_or_formatting(c)
    }
}

/// The canonical (Unicode, lower-case) form of a domain, after checking that
/// it is valid and written in its normal form.
fn canonical_domain(domain: &str) -> Result<String, FieldError> {
    let invalid = || FieldError::new("email", "must be a valid email address");
    if domain.starts_with('[') {
        // An address literal (`[192.0.2.1]`): no IDNA, only the HTML5 /
        // SMTP literal syntax, as before.
        return if format!("x@{domain}").validate_email() {
            Ok(domain.to_ascii_lowercase())
        } else {
            Err(invalid())
        };
    }
    let uts46 = Uts46::new();
    let ascii = uts46
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Allow,
            DnsLength::Verify,
        )
        .map_err(|_| invalid())?;
    // The HTML5 label syntax (no leading or trailing hyphen, labels of at
    // most 63 characters) on the A-label form.
    if !format!("x@{ascii}").validate_email() {
        return Err(invalid());
    }
    let (unicode, result) = uts46.to_unicode(ascii.as_bytes(), AsciiDenyList::STD3, Hyphens::Allow);
    result.map_err(|_| invalid())?;
    let lowered = domain.to_ascii_lowercase();
    if lowered != ascii && lowered != unicode {
        return Err(FieldError::new(
            "email",
            "the domain must be written in its normal form",
        ));
    }
    Ok(unicode.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(input: &str) -> String {
        EmailAddress::parse(input)
            .map(|email| email.canonical().to_owned())
            .unwrap_or_else(|error| panic!("{input:?}: {error}"))
    }

    fn message(input: &str) -> String {
        match EmailAddress::parse(input) {
            Ok(email) => panic!("{input:?} was accepted as {:?}", email.canonical()),
            Err(error) => error.message,
        }
    }

    #[test]
    fn internationalised_addresses_are_accepted() {
        assert_eq!(key("josé@example.com"), "josé@example.com");
        assert_eq!(key("user@bücher.example"), "user@bücher.example");
        assert_eq!(key("user@xn--bcher-kva.example"), "user@bücher.example");
        assert_eq!(key("用户@例子.广告"), "用户@例子.广告");
        assert_eq!(key("Bob@[192.0.2.1]"), "bob@[192.0.2.1]");
    }

    #[test]
    fn compatibility_spellings_of_a_local_part_share_its_key() {
        let original = key("kate.jose@example.com");
        for spoof in [
            "ｋate.jose@example.com",
            "\u{212A}ate.jose@example.com",
            "KATE.JOSE@example.com",
        ] {
            assert_eq!(key(spoof), original, "{spoof:?}");
        }
        assert_eq!(key("jose\u{0301}@example.com"), key("josé@example.com"));
        assert_eq!(key("JOSÉ@example.com"), key("josé@example.com"));
    }

    #[test]
    fn the_display_form_keeps_case_and_composes_the_local_part() {
        let email =
            EmailAddress::parse("Jose\u{0301}@Example.COM").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(email.as_str(), "José@Example.COM");
        assert_eq!(email.local_part(), "José");
        assert_eq!(email.canonical_local_part(), "josé");
    }

    #[test]
    fn invisible_characters_in_the_local_part_are_refused() {
        for spoof in [
            "ali\u{00AD}ce@example.com",
            "ali\u{200B}ce@example.com",
            "alice\u{FE0F}@example.com",
            "ali\u{034F}ce@example.com",
            "alice\u{E0100}@example.com",
            "ali\u{202E}ce@example.com",
            "ali\u{3164}ce@example.com",
        ] {
            assert_eq!(
                message(spoof),
                "must not contain invisible or formatting characters",
                "{spoof:?}"
            );
        }
    }

    #[test]
    fn a_domain_not_in_its_normal_form_is_refused() {
        for spoof in [
            "alice@ｅxample.com",
            "alice@example\u{3002}com",
            "alice@exam\u{00AD}ple.com",
            "alice@bu\u{0308}cher.example",
            "alice@BÜCHER.example",
        ] {
            assert_eq!(
                message(spoof),
                "the domain must be written in its normal form",
                "{spoof:?}"
            );
        }
        assert_eq!(key("alice@EXAMPLE.com"), "alice@example.com");
        assert_eq!(key("alice@XN--BCHER-KVA.example"), "alice@bücher.example");
    }

    #[test]
    fn malformed_addresses_are_refused_without_echoing_them() {
        for bad in [
            "no-at-sign",
            "@example.com",
            "alice@",
            "ali ce@example.com",
            "alice@exa_mple.com",
            "alice@-example.com",
            "ａ＠b@example.com",
            "alice@xn--invalid-.com",
        ] {
            let text = message(bad);
            assert!(!text.contains(bad), "{text}");
        }
    }

    #[test]
    fn search_terms_are_folded_like_keys() {
        assert_eq!(normalise_search_term("ＡＬＩＣＥ"), "alice");
        assert_eq!(
            normalise_search_term("user@XN--BCHER-KVA.example"),
            "user@bücher.example"
        );
        assert_eq!(normalise_search_term("example\u{3002}com"), "example.com");
        // A label that is not valid punycode stays as typed.
        assert_eq!(normalise_search_term("a@xn--ab-.x"), "a@xn--ab-.x");
    }
}
