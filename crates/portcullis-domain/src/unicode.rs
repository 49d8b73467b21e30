//! Character classes the account rules are built from, in one place so that
//! every rule that says "invisible" or "effective" means the same thing.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` is general category Cf (format), Cc (control), Zl (line
/// separator) or Zp (paragraph separator): characters that render as nothing,
/// reorder text (bidi overrides) or break lines.
pub(crate) fn is_format_control_or_separator(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::Control
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Whether `c` is a Default_Ignorable_Code_Point (Unicode's
/// DerivedCoreProperties.txt): rendered as nothing when a font has no glyph
/// for it. Most are Cf; the rest (variation selectors, the combining grapheme
/// joiner, Hangul fillers, reserved ranges) are listed here. The property is
/// stable: Unicode never removes a code point from it.
pub(crate) fn is_default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Whether `c` is invisible or formatting: [`is_format_control_or_separator`]
/// or [`is_default_ignorable`].
pub(crate) fn is_invisible_or_formatting(c: char) -> bool {
    is_format_control_or_separator(c) || is_default_ignorable(c)
}

/// Whether `c` is a combining mark (general category Mn, Mc or Me).
pub(crate) fn is_combining_mark(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::EnclosingMark
    )
}

/// Whether `c` counts as a character of its own in the password rules: not
/// White_Space, not Cf, not a combining mark.
pub(crate) fn is_effective_password_character(c: char) -> bool {
    !c.is_whitespace() && c.general_category() != GeneralCategory::Format && !is_combining_mark(c)
}

/// Unicode Normalization Form KC.
pub(crate) fn nfkc(text: &str) -> String {
    text.nfkc().collect()
}

/// Unicode Normalization Form C.
pub(crate) fn nfc(text: &str) -> String {
    text.nfc().collect()
}

/// The folded form identities are compared in: lower-case of NFKC, so
/// full-width letters, the Kelvin sign and other compatibility spellings
/// fold to their ordinary form.
pub(crate) fn nfkc_lowercase(text: &str) -> String {
    nfkc(text).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invisible_class_covers_format_characters_and_the_listed_ignorables() {
        // The hand-written list must cover the categories it claims to
        // extend: the variation selectors and the joiner are not Cf.
        for c in ['\u{FE0F}', '\u{E0100}', '\u{034F}', '\u{3164}', '\u{115F}'] {
            assert!(is_default_ignorable(c), "{:04X}", u32::from(c));
            assert!(is_invisible_or_formatting(c));
        }
        for c in ['\u{202E}', '\u{2028}', '\u{2029}', '\u{200D}', '\u{0007}'] {
            assert!(is_format_control_or_separator(c), "{:04X}", u32::from(c));
        }
        for c in ['a', 'é', '字', ' ', '\u{0301}'] {
            assert!(!is_invisible_or_formatting(c), "{:04X}", u32::from(c));
        }
    }

    #[test]
    fn nfkc_lowercase_folds_compatibility_spellings() {
        assert_eq!(nfkc_lowercase("ＡＬＩＣＥ"), "alice");
        assert_eq!(nfkc_lowercase("\u{212A}elvin"), "kelvin");
        assert_eq!(nfkc_lowercase("Jose\u{0301}"), "josé");
    }

    #[test]
    fn effective_characters_exclude_spaces_formats_and_marks() {
        for c in [' ', '\u{3000}', '\u{200B}', '\u{0301}', '\u{20DD}'] {
            assert!(!is_effective_password_character(c), "{:04X}", u32::from(c));
        }
        assert!(is_effective_password_character('x'));
    }
}
