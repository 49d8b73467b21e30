use portcullis_domain::{EmailAddress, FullName, Password, PasswordPolicy, ScopeSet, Username};
use proptest::prelude::*;

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
            prop_assert_eq!(email.as_str(), input.as_str());
        }
    }

    #[test]
    fn a_full_name_without_controls_is_refused_exactly_when_too_long(input in "\\PC{0,120}") {
        let acceptable = input.chars().count() <= 100;
        prop_assert_eq!(FullName::parse(&input).is_ok(), acceptable);
    }

    #[test]
    fn password_length_rules_count_code_points(password in "\\PC{0,300}") {
        let username = Username::parse("zz9").expect("username");
        let email = EmailAddress::parse("q@example.com").expect("email");
        let length = password.chars().count();
        let result = PasswordPolicy::default().check(&Password::new(password.clone()), &username, &email);
        if !(15..=256).contains(&length) {
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
