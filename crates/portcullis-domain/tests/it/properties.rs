use portcullis_domain::{
    EmailAddress, FullName, Password, PasswordPolicy, ScopeSet, TrivialPattern, Username,
    find_trivial_pattern,
};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

/// Characters that are their own NFKC form, have a one-character lower
/// case, and never compose with a neighbour: a password made of them has
/// exactly as many different characters after normalisation as before.
const STABLE_CHARACTERS: &str =
    "[a-zA-Z0-9!-/:-@\u{e0}-\u{ff}\u{3b1}-\u{3c9}\u{430}-\u{44f}\u{4e00}-\u{9fa5}]";

proptest! {
    #[test]
    fn a_parsed_username_is_lowercase_alphabet_and_parses_to_itself(input in "\\PC{0,40}") {
        if let Ok(username) = Username::parse(&input) {
            let text = username.as_str();
            prop_assert!((3..=32).contains(&text.chars().count()));
            prop_assert!(text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)));
            let reparsed = Username::parse(text);
            prop_assert_eq!(reparsed.as_ref().map(Username::as_str), Ok(text));
            prop_assert!(input.eq_ignore_ascii_case(text));
        }
    }

    #[test]
    fn every_username_of_the_alphabet_is_accepted(input in "[A-Za-z0-9_.-]{3,32}") {
        prop_assert!(Username::parse(&input).is_ok());
    }

    #[test]
    fn a_parsed_email_is_at_most_254_characters_and_has_an_at(input in "\\PC{0,300}") {
        if let Ok(email) = EmailAddress::parse(&input) {
            prop_assert!(email.as_str().chars().count() <= 254);
            prop_assert!(email.as_str().contains('@'));
            // Shown as given, except that the local part is composed (NFC).
            let (local, domain) = input.rsplit_once('@').expect("an @");
            prop_assert_eq!(email.as_str(), format!("{}@{domain}", local.nfc().collect::<String>()));
            // The display form names the same address.
            let reparsed = EmailAddress::parse(email.as_str()).expect("the display form parses");
            prop_assert_eq!(reparsed.canonical(), email.canonical());
        }
    }

    #[test]
    fn ascii_case_never_changes_an_emails_key(local in "[a-zA-Z0-9._+-]{1,20}", domain in "[a-zA-Z]{1,10}\\.[a-zA-Z]{2,5}") {
        let lower = EmailAddress::parse(&format!("{local}@{domain}").to_lowercase()).expect("valid");
        let upper = EmailAddress::parse(&format!("{local}@{domain}").to_uppercase()).expect("valid");
        prop_assert_eq!(lower.canonical(), upper.canonical());
    }

    #[test]
    fn an_invisible_character_anywhere_in_a_local_part_is_refused(
        local in "[a-z0-9]{2,20}",
        position in 0_usize..20,
        invisible in prop::sample::select(vec!['\u{ad}', '\u{200b}', '\u{200d}', '\u{2060}', '\u{fe0f}', '\u{e0101}', '\u{34f}', '\u{202e}', '\u{feff}']),
    ) {
        let mut spoof: Vec<char> = local.chars().collect();
        spoof.insert(position.min(spoof.len()), invisible);
        let spoof: String = spoof.into_iter().collect();
        let error = EmailAddress::parse(&format!("{spoof}@example.com")).map(|_| ());
        prop_assert_eq!(
            error.map_err(|e| e.message),
            Err("must not contain invisible or formatting characters".to_owned())
        );
    }

    #[test]
    fn any_password_built_from_at_most_four_distinct_characters_is_refused(
        alphabet in prop::collection::vec(STABLE_CHARACTERS, 1..=4),
        picks in prop::collection::vec(0_usize..4, 15..60),
    ) {
        let password: String = picks.iter().map(|i| alphabet[i % alphabet.len()].as_str()).collect();
        let username = Username::parse("q_q").expect("username");
        let email = EmailAddress::parse("q@example.com").expect("email");
        prop_assert!(PasswordPolicy::default().check(&Password::new(password.clone()), &username, &email).is_err());
        prop_assert_eq!(
            find_trivial_pattern(&password, 15),
            Some(TrivialPattern::TooFewDistinctCharacters)
        );
    }

    #[test]
    fn a_random_twenty_character_alphanumeric_password_passes(password in "[A-Za-z0-9]{20}") {
        // `q_q` cannot occur in an alphanumeric password, and `q` is below
        // the local-part floor: only the pattern and list rules are tested.
        let username = Username::parse("q_q").expect("username");
        let email = EmailAddress::parse("q@example.com").expect("email");
        let result = PasswordPolicy::default().check(&Password::new(password), &username, &email);
        prop_assert_eq!(result, Ok(()));
    }

    #[test]
    fn a_password_and_its_decomposed_spelling_get_the_same_verdict(password in "[a-z\u{e0}-\u{ff} ]{10,30}") {
        let username = Username::parse("q_q").expect("username");
        let email = EmailAddress::parse("q@example.com").expect("email");
        let decomposed: String = password.nfd().collect();
        let policy = PasswordPolicy::default();
        prop_assert_eq!(
            policy.check(&Password::new(password), &username, &email),
            policy.check(&Password::new(decomposed), &username, &email)
        );
    }

    #[test]
    fn a_full_name_without_controls_or_separators_is_refused_exactly_when_too_long(input in "[^\\p{C}\\p{Zl}\\p{Zp}]{0,120}") {
        let acceptable = input.chars().count() <= 100;
        prop_assert_eq!(FullName::parse(&input).is_ok(), acceptable);
    }

    #[test]
    fn a_full_name_with_a_format_or_separator_character_is_refused(
        name in "[a-zA-Z ]{0,40}",
        position in 0_usize..40,
        bad in "[\\p{Cf}\\p{Cc}\\u{2028}\\u{2029}]",
    ) {
        let mut chars: Vec<char> = name.chars().collect();
        chars.insert(position.min(chars.len()), bad.chars().next().expect("one character"));
        let name: String = chars.into_iter().collect();
        prop_assert!(FullName::parse(&name).is_err());
    }

    #[test]
    fn password_length_rules_count_code_points(password in "\\PC{0,300}") {
        let username = Username::parse("zz9").expect("username");
        let email = EmailAddress::parse("q@example.com").expect("email");
        // Counted as typed and after NFKC normalisation, which can lengthen
        // a password (`¸` is a space and a combining cedilla): both must fit.
        let typed = password.chars().count();
        let stored = password.nfkc().count();
        let result = PasswordPolicy::default().check(&Password::new(password.clone()), &username, &email);
        if !(15..=256).contains(&typed) || !(15..=256).contains(&stored) {
            prop_assert!(result.is_err());
        }
        if let Err(error) = result {
            // The rule is named; the password never is.
            prop_assert!(password.len() < 4 || !error.message.contains(&password));
        }
    }

    #[test]
    fn scope_sets_survive_display_and_parse(
        names in prop::collection::vec(prop_oneof!["profile", "admin"], 0..5),
        separator in "[ \t]{1,3}",
    ) {
        let scopes = ScopeSet::parse(&names.join(&separator)).expect("known names only");
        prop_assert_eq!(ScopeSet::parse(&scopes.to_string()), Ok(scopes));
    }
}
