//! Verifying a typed password against a stored hash, across Unicode
//! normalisation, in time that does not depend on the account.

use super::AuthService;
use crate::account::PasswordHashString;
use crate::error::HashingError;
use crate::password::Password;
use crate::ports::PasswordVerification;

/// The outcome of [`AuthService::verify_typed_password`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TypedPasswordCheck {
    /// Neither form matched (or there was no account).
    Mismatch,
    /// A form matched. `rehash` is set when the stored hash should be
    /// replaced by a hash of the NFKC form: its parameters are outdated, or
    /// it was made from the password as typed before passwords were
    /// normalised.
    Match {
        /// Replace the stored hash with one of the NFKC form.
        rehash: bool,
    },
}

impl AuthService {
    /// Verifies `typed` against `stored` (`None`: unknown user, dummy work).
    ///
    /// New passwords are hashed in NFKC, so the NFKC form is verified first.
    /// When the typed password is not NFKC-stable, an account whose hash
    /// was made from a non-normalised password (before normalisation was
    /// introduced) would only match the raw form, so that is tried second.
    /// Timing depends only on the typed password, never on the account: an
    /// NFKC-stable password (every ASCII one) costs one verification; any
    /// other costs two, for a match on the first form, a known user and an
    /// unknown one alike (the second is dummy work when nothing is left to
    /// try).
    pub(super) async fn verify_typed_password(
        &self,
        typed: &Password,
        stored: Option<&PasswordHashString>,
    ) -> Result<TypedPasswordCheck, HashingError> {
        if typed.is_nfkc() {
            return Ok(
                match self.ports.hasher.verify_password(typed, stored).await? {
                    PasswordVerification::Match { needs_rehash } => TypedPasswordCheck::Match {
                        rehash: needs_rehash,
                    },
                    PasswordVerification::Mismatch => TypedPasswordCheck::Mismatch,
                },
            );
        }
        let normalised = typed.nfkc();
        match self
            .ports
            .hasher
            .verify_password(&normalised, stored)
            .await?
        {
            PasswordVerification::Match { needs_rehash } => {
                // The same work as the raw-form attempt below would cost.
                self.ports.hasher.verify_password(typed, None).await?;
                Ok(TypedPasswordCheck::Match {
                    rehash: needs_rehash,
                })
            }
            PasswordVerification::Mismatch => {
                match self.ports.hasher.verify_password(typed, stored).await? {
                    PasswordVerification::Match { .. } => {
                        Ok(TypedPasswordCheck::Match { rehash: true })
                    }
                    PasswordVerification::Mismatch => Ok(TypedPasswordCheck::Mismatch),
                }
            }
        }
    }
}
