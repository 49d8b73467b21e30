//! Validates a sign-up with the domain crate alone: no database, no web
//! framework, no crypto. `cargo run -p portcullis-domain --example validate_signup`.
#![allow(clippy::print_stdout, reason = "an example prints what it shows")]

use portcullis_domain::{EmailAddress, FieldError, Password, PasswordPolicy, ScopeSet, Username};

fn check(username: &str, email: &str, password: &str) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let username = Username::parse(username).map_err(|e| errors.push(e)).ok();
    let email = EmailAddress::parse(email).map_err(|e| errors.push(e)).ok();
    if let (Some(username), Some(email)) = (&username, &email) {
        let policy = PasswordPolicy::default();
        if let Err(error) = policy.check(&Password::new(password.to_owned()), username, email) {
            errors.push(error);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn main() {
    for (username, email, password) in [
        ("Alice", "alice@example.com", "correct horse battery staple"),
        ("al", "not-an-email", "short"),
        ("bob", "bob@example.com", "my name is bob and i like it"),
        ("carol", "carol@example.com", "123456789012345"),
        ("dave", "dave@example.com", "purple monkey dishwasher"),
    ] {
        match check(username, email, password) {
            Ok(()) => println!("{username:>6}: accepted"),
            Err(errors) => {
                for error in errors {
                    // Messages name the rule, never the submitted value.
                    println!("{username:>6}: {}: {}", error.field, error.message);
                }
            }
        }
    }
    let scopes = ScopeSet::parse("admin profile").unwrap_or_default();
    println!("scopes are written in canonical order: {scopes}");
}
