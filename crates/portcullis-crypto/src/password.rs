//! Password hashing with argon2id, stored as PHC strings.

use std::fmt;

use argon2::password_hash::Error as PasswordHashError;
use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher,
    PasswordVerifier, Version,
};

use crate::error::CryptoError;
use crate::random::{constant_time_eq, generate_opaque_token};

/// Bytes of salt drawn for every new hash (the PHC recommendation).
const SALT_BYTES: usize = 16;

/// argon2 working memory that is kept and reused: with it,
/// [`Argon2Hasher::hash_in`] and [`Argon2Hasher::verify_in`] do not allocate
/// the `m` KiB of blocks on every call.
///
/// A server that hashes on a fixed set of threads keeps one workspace per
/// thread, so its hashing memory is exactly threads × `m` KiB, instead of
/// whatever the allocator keeps around after many threads allocated and freed
/// blocks of that size.
#[derive(Default)]
pub struct Argon2Workspace {
    blocks: Vec<Block>,
}

impl Argon2Workspace {
    /// An empty workspace; it grows to the size the first hash needs.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes currently held.
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        self.blocks.len() * Block::SIZE
    }

    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        &mut self.blocks[..count]
    }
}

impl fmt::Debug for Argon2Workspace {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Argon2Workspace")
            .field("capacity_bytes", &self.capacity_bytes())
            .finish()
    }
}

/// Cost parameters for argon2id, passed in by the caller (usually from config).
///
/// Cost is a policy value rather than a constant so that an operator can raise
/// it over time (old hashes are upgraded on login, see
/// [`PasswordCheck::Match::needs_rehash`]) and so that tests can use
/// [`Argon2Policy::insecure_test_policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Policy {
    /// Memory cost in KiB (argon2 `m`).
    pub memory_kib: u32,
    /// Number of passes over memory (argon2 `t`).
    pub iterations: u32,
    /// Degree of parallelism (argon2 `p`).
    pub parallelism: u32,
}

impl Argon2Policy {
    /// OWASP recommendation: m=19456 KiB, t=2, p=1.
    ///
    /// See the OWASP Password Storage Cheat Sheet; these are also argon2's own
    /// defaults.
    pub const OWASP: Argon2Policy = Argon2Policy {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    /// Smallest memory cost accepted for production use.
    ///
    /// 7 MiB is the smallest memory cost in the OWASP table of equivalent
    /// argon2id configurations.
    pub const MIN_SECURE_MEMORY_KIB: u32 = 7168;

    /// Cheap parameters for tests ONLY: m=8 KiB (the smallest argon2 accepts
    /// with one lane), t=1, p=1.
    ///
    /// A hash made with this policy can be brute-forced quickly. It is refused
    /// by [`Argon2Policy::validate`] unless insecure parameters are explicitly
    /// allowed.
    #[must_use]
    pub const fn insecure_test_policy() -> Argon2Policy {
        Argon2Policy {
            memory_kib: Params::MIN_M_COST,
            iterations: Params::MIN_T_COST,
            parallelism: Params::MIN_P_COST,
        }
    }

    /// Checks that these parameters are usable.
    ///
    /// [`Argon2Hasher::new`] only checks that argon2 accepts the parameters;
    /// call this with `allow_insecure = false` where a policy comes from
    /// configuration, so a production deployment cannot run with test costs.
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidPolicy`] if argon2 rejects the parameters (for
    /// example `iterations == 0` or `memory_kib < 8 * parallelism`), or if
    /// `memory_kib` is below [`Argon2Policy::MIN_SECURE_MEMORY_KIB`] and
    /// `allow_insecure` is false.
    pub fn validate(&self, allow_insecure: bool) -> Result<(), CryptoError> {
        self.to_params()?;
        if !allow_insecure && self.memory_kib < Self::MIN_SECURE_MEMORY_KIB {
            return Err(CryptoError::InvalidPolicy(format!(
                "memory cost {} KiB is below the secure minimum of {} KiB",
                self.memory_kib,
                Self::MIN_SECURE_MEMORY_KIB
            )));
        }
        Ok(())
    }

    fn to_params(self) -> Result<Params, CryptoError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|error| CryptoError::InvalidPolicy(error.to_string()))
    }
}

impl Default for Argon2Policy {
    /// [`Argon2Policy::OWASP`].
    fn default() -> Self {
        Self::OWASP
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password is correct.
    Match {
        /// The stored hash was made with another algorithm, version or cost
        /// than the hasher's current policy: hash the (now known correct)
        /// password again and store the new hash.
        needs_rehash: bool,
    },
    /// The password is wrong.
    Mismatch,
}

/// Hashes and verifies passwords with argon2id under one [`Argon2Policy`].
///
/// Cheap to clone. `Debug` prints the policy only.
#[derive(Clone)]
pub struct Argon2Hasher {
    policy: Argon2Policy,
    argon2: Argon2<'static>,
    /// A hash of a random, forgotten password made with `policy`; verifying
    /// against it costs the same as verifying a real user's hash.
    dummy_phc: String,
}

impl Argon2Hasher {
    /// Builds the hasher; computes, once, a dummy PHC hash with this policy (of
    /// a random password) used by [`Argon2Hasher::verify_dummy`].
    ///
    /// This checks only that argon2 accepts the parameters; use
    /// [`Argon2Policy::validate`] to also refuse insecure ones.
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidPolicy`] if argon2 rejects the parameters;
    /// [`CryptoError::Hashing`] if computing the dummy hash fails.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails (see
    /// [`generate_opaque_token`]).
    pub fn new(policy: Argon2Policy) -> Result<Self, CryptoError> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, policy.to_params()?);
        let mut hasher = Argon2Hasher {
            policy,
            argon2,
            dummy_phc: String::new(),
        };
        hasher.dummy_phc = hasher.hash(generate_opaque_token("").as_bytes())?;
        Ok(hasher)
    }

    /// The policy new hashes are made with.
    #[must_use]
    pub fn policy(&self) -> Argon2Policy {
        self.policy
    }

    /// Hashes `password` with argon2id, version 0x13 and a random 16-byte salt;
    /// returns the PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    ///
    /// # Errors
    ///
    /// [`CryptoError::Hashing`] if argon2 fails (out of memory, or the
    /// operating system's random number generator failed while drawing the
    /// salt).
    pub fn hash(&self, password: &[u8]) -> Result<String, CryptoError> {
        self.argon2
            .hash_password(password)
            .map(|hash| hash.to_string())
            .map_err(|error| CryptoError::Hashing(error.to_string()))
    }

    /// Verifies `password` against a stored PHC string, using the algorithm,
    /// version and parameters IN that string (not this hasher's policy), so
    /// hashes made under an older policy keep working.
    ///
    /// On a match, `needs_rehash` tells whether the stored hash differs from
    /// the current policy (see [`Argon2Hasher::needs_rehash`]).
    ///
    /// # Errors
    ///
    /// [`CryptoError::MalformedHash`] if `phc` is not a complete argon2 PHC
    /// string (unparsable, another algorithm, invalid parameters, no salt or no
    /// hash); [`CryptoError::Hashing`] if argon2 fails while recomputing.
    pub fn verify(&self, password: &[u8], phc: &str) -> Result<PasswordCheck, CryptoError> {
        let parsed = parse_argon2_phc(phc).ok_or(CryptoError::MalformedHash)?;
        match self.argon2.verify_password(password, &parsed) {
            Ok(()) => Ok(PasswordCheck::Match {
                needs_rehash: self.differs_from_policy(&parsed),
            }),
            Err(PasswordHashError::PasswordInvalid) => Ok(PasswordCheck::Mismatch),
            Err(error) => Err(CryptoError::Hashing(error.to_string())),
        }
    }

    /// Like [`Argon2Hasher::hash`], computing in `workspace` instead of
    /// freshly allocated memory. Produces the same kind of PHC string.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Hashing`] if argon2 fails or the operating system's
    /// random number generator cannot provide a salt.
    pub fn hash_in(
        &self,
        password: &[u8],
        workspace: &mut Argon2Workspace,
    ) -> Result<String, CryptoError> {
        let hashing = |error: &dyn fmt::Display| CryptoError::Hashing(error.to_string());
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|e| hashing(&e))?;
        let params = self.argon2.params();
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.argon2
            .hash_password_into_with_memory(
                password,
                &salt,
                &mut output,
                workspace.blocks(params.block_count()),
            )
            .map_err(|e| hashing(&e))?;
        let phc = PasswordHash {
            algorithm: ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(|e| hashing(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| hashing(&e))?),
            hash: Some(Output::new(&output).map_err(|e| hashing(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Like [`Argon2Hasher::verify`], computing in `workspace` (which grows if
    /// the stored hash asks for more memory than the policy).
    ///
    /// # Errors
    ///
    /// As [`Argon2Hasher::verify`].
    pub fn verify_in(
        &self,
        password: &[u8],
        phc: &str,
        workspace: &mut Argon2Workspace,
    ) -> Result<PasswordCheck, CryptoError> {
        let parsed = parse_argon2_phc(phc).ok_or(CryptoError::MalformedHash)?;
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return Err(CryptoError::MalformedHash);
        };
        let params = Params::try_from(&parsed).map_err(|_| CryptoError::MalformedHash)?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str())
            .map_err(|_| CryptoError::MalformedHash)?;
        let version = match parsed.version {
            Some(version) => Version::try_from(version).map_err(|_| CryptoError::MalformedHash)?,
            None => Version::default(),
        };
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let mut computed = vec![0u8; expected.len()];
        argon2
            .hash_password_into_with_memory(
                password,
                salt.as_ref(),
                &mut computed,
                workspace.blocks(blocks),
            )
            .map_err(|error| CryptoError::Hashing(error.to_string()))?;
        if constant_time_eq(&computed, expected.as_bytes()) {
            Ok(PasswordCheck::Match {
                needs_rehash: self.differs_from_policy(&parsed),
            })
        } else {
            Ok(PasswordCheck::Mismatch)
        }
    }

    /// Like [`Argon2Hasher::verify_dummy`], computing in `workspace`.
    pub fn verify_dummy_in(&self, password: &[u8], workspace: &mut Argon2Workspace) {
        let _ = self.verify_in(password, &self.dummy_phc, workspace);
    }

    /// Does the same work as [`Argon2Hasher::verify`] against the dummy hash
    /// and discards the result.
    ///
    /// Call it when the user is unknown, so that "no such user" takes as long
    /// as "wrong password" and response times do not reveal which accounts
    /// exist.
    pub fn verify_dummy(&self, password: &[u8]) {
        // The outcome is irrelevant (it is a mismatch unless someone guesses 256
        // random bits); only the time spent matters.
        let _ = self.verify(password, &self.dummy_phc);
    }

    /// Whether a stored hash should be replaced by a fresh one: true if its
    /// algorithm is not argon2id, its version is not 0x13, or its m/t/p differ
    /// from this hasher's policy. Also true if `phc` is not a usable argon2 PHC
    /// string.
    #[must_use]
    pub fn needs_rehash(&self, phc: &str) -> bool {
        parse_argon2_phc(phc).is_none_or(|parsed| self.differs_from_policy(&parsed))
    }

    fn differs_from_policy(&self, parsed: &PasswordHash) -> bool {
        // Compare field by field: `Params` also carries the output length and
        // other details, so `Params ==` never matches a parsed hash.
        let Ok(params) = Params::try_from(parsed) else {
            return true;
        };
        parsed.algorithm != ARGON2ID_IDENT
            || parsed
                .version
                .is_none_or(|version| version != u32::from(Version::V0x13))
            || params.m_cost() != self.policy.memory_kib
            || params.t_cost() != self.policy.iterations
            || params.p_cost() != self.policy.parallelism
    }
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Argon2Hasher")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Parses a PHC string and checks that argon2 can verify against it: a known
/// argon2 variant and version, valid parameters, a salt and a hash.
fn parse_argon2_phc(phc: &str) -> Option<PasswordHash> {
    let parsed = PasswordHash::new(phc).ok()?;
    Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    if let Some(version) = parsed.version {
        Version::try_from(version).ok()?;
    }
    Params::try_from(&parsed).ok()?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return None;
    }
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_hasher() -> Argon2Hasher {
        Argon2Hasher::new(Argon2Policy::insecure_test_policy()).unwrap()
    }

    #[test]
    fn hash_then_verify_matches_without_rehash() {
        let hasher = test_hasher();
        let phc = hasher.hash(b"correct horse").unwrap();
        assert_eq!(
            hasher.verify(b"correct horse", &phc).unwrap(),
            PasswordCheck::Match {
                needs_rehash: false
            }
        );
    }

    #[test]
    fn hash_is_argon2id_version_19_with_the_policy_parameters() {
        let hasher = test_hasher();
        let phc = hasher.hash(b"pw").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.salt.unwrap().len(), 16);
    }

    #[test]
    fn hashing_the_same_password_twice_uses_different_salts() {
        let hasher = test_hasher();
        assert_ne!(hasher.hash(b"pw").unwrap(), hasher.hash(b"pw").unwrap());
    }

    #[test]
    fn wrong_password_is_a_mismatch() {
        let hasher = test_hasher();
        let phc = hasher.hash(b"correct horse").unwrap();
        assert_eq!(
            hasher.verify(b"battery staple", &phc).unwrap(),
            PasswordCheck::Mismatch
        );
    }

    #[test]
    fn verify_uses_the_parameters_stored_in_the_hash() {
        let old_policy = Argon2Policy {
            memory_kib: 16,
            iterations: 2,
            parallelism: 2,
        };
        let old_hasher = Argon2Hasher::new(old_policy).unwrap();
        let phc = old_hasher.hash(b"pw").unwrap();

        let new_hasher = test_hasher();
        assert_eq!(
            new_hasher.verify(b"pw", &phc).unwrap(),
            PasswordCheck::Match { needs_rehash: true }
        );
        assert!(new_hasher.needs_rehash(&phc));
        assert_eq!(
            new_hasher.verify(b"other", &phc).unwrap(),
            PasswordCheck::Mismatch
        );
    }

    #[test]
    fn needs_rehash_is_false_for_a_hash_made_with_the_same_policy() {
        let hasher = test_hasher();
        let phc = hasher.hash(b"pw").unwrap();
        assert!(!hasher.needs_rehash(&phc));
        assert!(!test_hasher().needs_rehash(&phc));
    }

    #[test]
    fn argon2i_and_old_version_hashes_still_verify_but_need_rehash() {
        let hasher = test_hasher();
        let params = Argon2Policy::insecure_test_policy().to_params().unwrap();
        for (algorithm, version) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2id, Version::V0x10),
        ] {
            let phc = Argon2::new(algorithm, version, params.clone())
                .hash_password(b"pw")
                .unwrap()
                .to_string();
            assert_eq!(
                hasher.verify(b"pw", &phc).unwrap(),
                PasswordCheck::Match { needs_rehash: true },
                "{phc}"
            );
        }
    }

    #[test]
    fn malformed_phc_string_is_malformed_hash() {
        let hasher = test_hasher();
        let valid = hasher.hash(b"pw").unwrap();
        let without_hash = valid.rsplit_once('$').unwrap().0.to_owned();
        for phc in [
            "",
            "not a hash",
            "$argon2id$v=19$m=8,t=1,p=1$",
            "$bcrypt$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
            "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            without_hash.as_str(),
        ] {
            assert!(
                matches!(hasher.verify(b"pw", phc), Err(CryptoError::MalformedHash)),
                "{phc:?}"
            );
            assert!(hasher.needs_rehash(phc), "{phc:?}");
        }
    }

    #[test]
    fn workspace_hashes_interoperate_with_allocating_ones() {
        let hasher = Argon2Hasher::new(Argon2Policy::insecure_test_policy()).unwrap();
        let mut workspace = Argon2Workspace::new();
        let in_workspace = hasher.hash_in(b"correct horse", &mut workspace).unwrap();
        let allocated = hasher.hash(b"correct horse").unwrap();
        assert!(
            in_workspace.starts_with("$argon2id$v=19$"),
            "{in_workspace}"
        );
        // Each verifies the other's hashes, right and wrong passwords alike.
        assert_eq!(
            hasher.verify(b"correct horse", &in_workspace).unwrap(),
            PasswordCheck::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher
                .verify_in(b"correct horse", &allocated, &mut workspace)
                .unwrap(),
            PasswordCheck::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher
                .verify_in(b"wrong horse", &allocated, &mut workspace)
                .unwrap(),
            PasswordCheck::Mismatch
        );
        assert!(matches!(
            hasher.verify_in(b"x", "not a hash", &mut workspace),
            Err(CryptoError::MalformedHash)
        ));
    }

    #[test]
    fn a_workspace_is_reused_and_grows_for_costlier_stored_hashes() {
        let cheap = Argon2Hasher::new(Argon2Policy::insecure_test_policy()).unwrap();
        let costlier = Argon2Hasher::new(Argon2Policy {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let mut workspace = Argon2Workspace::new();
        cheap.hash_in(b"pw", &mut workspace).unwrap();
        let small = workspace.capacity_bytes();
        cheap.hash_in(b"pw", &mut workspace).unwrap();
        assert_eq!(workspace.capacity_bytes(), small, "reused, not grown");
        let stored = costlier.hash(b"pw").unwrap();
        assert_eq!(
            cheap.verify_in(b"pw", &stored, &mut workspace).unwrap(),
            PasswordCheck::Match { needs_rehash: true }
        );
        assert_eq!(workspace.capacity_bytes(), 64 * 1024);
    }

    #[test]
    fn verify_dummy_runs_against_a_hash_made_with_the_policy() {
        let hasher = test_hasher();
        assert!(!hasher.needs_rehash(&hasher.dummy_phc));
        assert_eq!(
            hasher.verify(b"", &hasher.dummy_phc).unwrap(),
            PasswordCheck::Mismatch
        );
        hasher.verify_dummy(b"anything");
    }

    #[test]
    fn validate_refuses_memory_below_the_secure_minimum_unless_insecure_is_allowed() {
        let weak = Argon2Policy {
            memory_kib: Argon2Policy::MIN_SECURE_MEMORY_KIB - 1,
            iterations: 2,
            parallelism: 1,
        };
        assert!(matches!(
            weak.validate(false),
            Err(CryptoError::InvalidPolicy(_))
        ));
        assert!(weak.validate(true).is_ok());
        assert!(matches!(
            Argon2Policy::insecure_test_policy().validate(false),
            Err(CryptoError::InvalidPolicy(_))
        ));
        assert!(Argon2Policy::insecure_test_policy().validate(true).is_ok());

        let minimum = Argon2Policy {
            memory_kib: Argon2Policy::MIN_SECURE_MEMORY_KIB,
            ..weak
        };
        assert!(minimum.validate(false).is_ok());
        assert!(Argon2Policy::OWASP.validate(false).is_ok());
    }

    #[test]
    fn validate_refuses_parameters_argon2_rejects_even_when_insecure_is_allowed() {
        for policy in [
            Argon2Policy {
                iterations: 0,
                ..Argon2Policy::OWASP
            },
            Argon2Policy {
                parallelism: 0,
                ..Argon2Policy::OWASP
            },
            Argon2Policy {
                memory_kib: 7,
                iterations: 1,
                parallelism: 1,
            },
        ] {
            assert!(
                matches!(policy.validate(true), Err(CryptoError::InvalidPolicy(_))),
                "{policy:?}"
            );
            assert!(matches!(
                Argon2Hasher::new(policy),
                Err(CryptoError::InvalidPolicy(_))
            ));
        }
    }

    #[test]
    fn default_policy_is_owasp() {
        assert_eq!(
            Argon2Policy::default(),
            Argon2Policy {
                memory_kib: 19_456,
                iterations: 2,
                parallelism: 1
            }
        );
    }

    #[test]
    fn debug_of_hasher_shows_the_policy_but_not_the_dummy_hash() {
        let hasher = test_hasher();
        let debug = format!("{hasher:?}");
        assert!(debug.contains("memory_kib: 8"), "{debug}");
        assert!(!debug.contains("argon2id"), "{debug}");
        assert!(!debug.contains(&hasher.dummy_phc), "{debug}");
    }
}
