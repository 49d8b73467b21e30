//! Types of the admin use-cases.

use crate::account::{FullName, Role, User};
use crate::email::{EmailAddress, normalise_search_term};
use crate::listing::PageCursor;

/// The largest page of users an admin listing returns.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserListQuery {
    /// Start after this position, a cursor the store made (opaque to the
    /// domain and to clients); `None` for the first page.
    pub after: Option<PageCursor>,
    /// At most this many users (1..=[`MAX_PAGE_SIZE`]).
    pub limit: u32,
    /// A substring of the username or of the email's canonical key.
    pub search: Option<UserSearch>,
}

/// An admin search term (an empty one matches everyone), normalised like canonical email keys
/// ([`normalise_search_term`]: NFKC, lower-case, `xn--` labels decoded), so
/// that every store matches it the same way: as a literal substring of the
/// username or of [`EmailAddress::canonical`].
///
/// ```
/// use portcullis_domain::UserSearch;
///
/// assert_eq!(UserSearch::new("ＡＬＩＣＥ@EXAMPLE.COM").as_str(), "alice@example.com");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSearch(String);

impl UserSearch {
    /// Normalises a search term as typed.
    pub fn new(term: &str) -> Self {
        Self(normalise_search_term(term))
    }

    /// The normalised term.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a user matches: the term is a substring of the username or of
    /// the canonical email key.
    pub fn matches(&self, username: &str, email: &EmailAddress) -> bool {
        username.contains(&self.0) || email.canonical().contains(&self.0)
    }
}

/// One page of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The users, in creation order.
    pub users: Vec<User>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<PageCursor>,
}

/// Changes an admin makes to an account; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct AdminUserChanges {
    /// Disable or enable. Disabling ends every session and API key at once.
    pub disabled: Option<bool>,
    /// New role.
    pub role: Option<Role>,
    /// New email address.
    pub email: Option<EmailAddress>,
    /// New display name; `Some(None)` clears it.
    pub full_name: Option<Option<FullName>>,
}

/// What the last-admin rule needs to know about one account: a store reads
/// it under the locks that keep the rule true while it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminStanding {
    /// The account has the admin role.
    pub admin: bool,
    /// The account is disabled.
    pub disabled: bool,
}

impl AdminStanding {
    /// Whether the account counts towards "at least one enabled admin".
    pub fn is_enabled_admin(self) -> bool {
        self.admin && !self.disabled
    }

    /// The standing after an admin change of `role` and `disabled` (each
    /// `None`: unchanged).
    pub fn after_change(self, role: Option<Role>, disabled: Option<bool>) -> Self {
        Self {
            admin: role.map_or(self.admin, |role| role == Role::Admin),
            disabled: disabled.unwrap_or(self.disabled),
        }
    }

    /// Whether going from this standing to `after` takes an enabled admin
    /// away: refused when no other enabled admin exists.
    pub fn loses_enabled_admin(self, after: Self) -> bool {
        self.is_enabled_admin() && !after.is_enabled_admin()
    }
}

#[cfg(test)]
mod standing_tests {
    use super::*;

    #[test]
    fn demoting_or_disabling_an_enabled_admin_loses_one_and_nothing_else_does() {
        let admin = AdminStanding {
            admin: true,
            disabled: false,
        };
        let user = AdminStanding {
            admin: false,
            disabled: false,
        };
        assert!(admin.loses_enabled_admin(admin.after_change(Some(Role::User), None)));
        assert!(admin.loses_enabled_admin(admin.after_change(None, Some(true))));
        assert!(!admin.loses_enabled_admin(admin.after_change(Some(Role::Admin), Some(false))));
        assert!(!admin.loses_enabled_admin(admin.after_change(None, None)));
        assert!(!user.loses_enabled_admin(user.after_change(None, Some(true))));
        let disabled_admin = AdminStanding {
            admin: true,
            disabled: true,
        };
        assert!(
            !disabled_admin
                .loses_enabled_admin(disabled_admin.after_change(Some(Role::User), None))
        );
    }
}
