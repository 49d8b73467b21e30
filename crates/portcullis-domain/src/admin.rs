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
