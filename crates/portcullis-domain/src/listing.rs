//! Pages of a user's own credentials (API keys, sessions).

/// The most items one page of a credential listing holds, and the page size
/// when none is asked for. It equals the default caps on live API keys and
/// sessions per user, so by default every live item fits on one page.
pub const MAX_LISTING_PAGE_SIZE: u32 = 100;

/// A position in a listing, as the store made it: opaque to clients and to
/// the domain, which pass it back unchanged. A cursor the store did not make
/// is refused with [`StoreError::InvalidCursor`](crate::StoreError::InvalidCursor).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageCursor(String);

impl PageCursor {
    /// Wraps a cursor as received or as made by a store.
    pub fn new(cursor: impl Into<String>) -> Self {
        Self(cursor.into())
    }

    /// The cursor's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which page of a listing to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (1..=[`MAX_LISTING_PAGE_SIZE`]).
    pub limit: u32,
    /// Start after this position; `None` for the first page.
    pub after: Option<PageCursor>,
}

impl Default for PageRequest {
    /// The first page, as large as pages get.
    fn default() -> Self {
        Self {
            limit: MAX_LISTING_PAGE_SIZE,
            after: None,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
}
