//! OAuth scopes.

use std::fmt;

/// A permission a credential can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read and change one's own account.
    Profile,
    /// Use the admin endpoints.
    Admin,
    /// Ask `POST /auth/introspect` about other tokens (RFC 7662): what a
    /// resource server's credential carries. Admins only, like `admin`.
    Introspect,
}

impl Scope {
    /// Every scope, in canonical order.
    pub const ALL: [Scope; 3] = [Scope::Profile, Scope::Admin, Scope::Introspect];

    /// The scope's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Admin => "admin",
            Self::Introspect => "introspect",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Profile => 0b001,
            Self::Admin => 0b010,
            Self::Introspect => 0b100,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that Portcullis does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope")]
pub struct UnknownScope;

/// A set of scopes, written on the wire as space-separated names (RFC 6749 §3.3).
///
/// ```
/// use portcullis_domain::{Scope, ScopeSet};
///
/// let scopes = ScopeSet::parse("admin  profile")?;
/// assert!(scopes.contains(Scope::Admin));
/// assert_eq!(scopes.to_string(), "profile admin");
/// # Ok::<(), portcullis_domain::UnknownScope>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ScopeSet(u8);

impl ScopeSet {
    /// No scopes.
    pub const EMPTY: ScopeSet = ScopeSet(0);

    /// Parses a space-separated list; empty input is the empty set.
    pub fn parse(input: &str) -> Result<Self, UnknownScope> {
        input
            .split([' ', '\t'])
            .filter(|part| !part.is_empty())
            .try_fold(Self::EMPTY, |set, part| {
                let scope = Scope::ALL
                    .into_iter()
                    .find(|scope| scope.as_str() == part)
                    .ok_or(UnknownScope)?;
                Ok(set.with(scope))
            })
    }

    /// Parses a list of scope names, one name per item, as JSON bodies
    /// carry them (`["profile", "admin"]`): an item must be exactly a scope
    /// name, so `"profile admin"` or `" profile"` is unknown. An empty list
    /// is the empty set.
    ///
    /// ```
    /// use portcullis_domain::{Scope, ScopeSet};
    ///
    /// let scopes = ScopeSet::parse_list(["admin", "profile"])?;
    /// assert_eq!(scopes, ScopeSet::parse("profile admin")?);
    /// assert!(ScopeSet::parse_list(["profile admin"]).is_err());
    /// # Ok::<(), portcullis_domain::UnknownScope>(())
    /// ```
    pub fn parse_list<I>(names: I) -> Result<Self, UnknownScope>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        names.into_iter().try_fold(Self::EMPTY, |set, name| {
            let scope = Scope::ALL
                .into_iter()
                .find(|scope| scope.as_str() == name.as_ref())
                .ok_or(UnknownScope)?;
            Ok(set.with(scope))
        })
    }

    /// This set plus `scope`.
    #[must_use]
    pub fn with(self, scope: Scope) -> Self {
        Self(self.0 | scope.bit())
    }

    /// Whether `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The scopes in both sets.
    #[must_use]
    pub fn intersection(self, other: ScopeSet) -> Self {
        Self(self.0 & other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_must_each_be_exactly_one_scope_name() {
        assert_eq!(
            ScopeSet::parse_list(["profile", "admin"]),
            Ok(ScopeSet::EMPTY.with(Scope::Profile).with(Scope::Admin))
        );
        assert_eq!(
            ScopeSet::parse_list(Vec::<String>::new()),
            Ok(ScopeSet::EMPTY)
        );
        for bad in [
            &["profile admin"][..],
            &["", "profile"],
            &[" profile"],
            &["root"],
            &["Profile"],
        ] {
            assert_eq!(ScopeSet::parse_list(bad), Err(UnknownScope), "{bad:?}");
        }
    }

    #[test]
    fn parsing_rejects_unknown_names_and_ignores_repeats() {
        assert_eq!(
            ScopeSet::parse("profile profile"),
            Ok(ScopeSet::EMPTY.with(Scope::Profile))
        );
        assert_eq!(ScopeSet::parse("profile openid"), Err(UnknownScope));
        assert_eq!(ScopeSet::parse(""), Ok(ScopeSet::EMPTY));
        assert_eq!(ScopeSet::parse("PROFILE"), Err(UnknownScope));
    }

    #[test]
    fn introspect_is_a_scope_of_its_own_in_canonical_order() {
        let all = ScopeSet::parse("introspect admin profile");
        assert_eq!(
            all.map(|set| set.to_string()),
            Ok("profile admin introspect".to_owned())
        );
        let introspect = ScopeSet::EMPTY.with(Scope::Introspect);
        assert!(!introspect.contains(Scope::Admin));
        assert!(!introspect.contains(Scope::Profile));
        assert_eq!(ScopeSet::parse_list(["introspect"]), Ok(introspect));
    }

    #[test]
    fn subset_and_intersection_follow_set_semantics() {
        let profile = ScopeSet::EMPTY.with(Scope::Profile);
        let both = profile.with(Scope::Admin);
        assert!(profile.is_subset_of(both));
        assert!(!both.is_subset_of(profile));
        assert_eq!(both.intersection(profile), profile);
        assert!(ScopeSet::EMPTY.is_subset_of(profile));
    }
}
