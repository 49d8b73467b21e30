//! Pages of a user's own credentials (API keys, sessions), and the cursors
//! of every listing.
//!
//! The cursor encoding the stores share: the sort key of the last item on a
//! page, base64url encoded, so that the next page is a range scan after it
//! (keyset paging: no item is skipped or repeated when items before the
//! cursor come or go). Clients and the use-cases pass the text back
//! unchanged; anything that does not decode to a key of the right listing is
//! [`StoreError::InvalidCursor`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::StoreError;

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

    /// The position after the user with primary key `pk` in the user
    /// listing (creation order).
    pub fn after_user(pk: i64) -> Self {
        Self::encode(&format!("u:{pk}"))
    }

    /// Reads an [`after_user`](Self::after_user) cursor back: the primary
    /// key.
    pub fn user_position(&self) -> Result<i64, StoreError> {
        match self.decode()?.split(':').collect::<Vec<_>>().as_slice() {
            ["u", pk] => number(pk),
            _ => Err(StoreError::InvalidCursor),
        }
    }

    /// The position after API key `id` created at `created_at` (unix
    /// seconds) in the newest-first key listing.
    pub fn after_api_key(created_at: i64, id: Uuid) -> Self {
        Self::encode(&format!("k:{created_at}:{}", id.hyphenated()))
    }

    /// Reads an [`after_api_key`](Self::after_api_key) cursor back:
    /// `(created_at, id)`.
    pub fn api_key_position(&self) -> Result<(i64, Uuid), StoreError> {
        match self.decode()?.split(':').collect::<Vec<_>>().as_slice() {
            ["k", created_at, id] => Ok((number(created_at)?, uuid(id)?)),
            _ => Err(StoreError::InvalidCursor),
        }
    }

    /// The position after session `id` in the most-recently-used-first
    /// session listing, by its `last_used_at` and `created_at` (unix
    /// seconds).
    pub fn after_session(last_used_at: i64, created_at: i64, id: Uuid) -> Self {
        Self::encode(&format!(
            "s:{last_used_at}:{created_at}:{}",
            id.hyphenated()
        ))
    }

    /// Reads an [`after_session`](Self::after_session) cursor back:
    /// `(last_used_at, created_at, id)`.
    pub fn session_position(&self) -> Result<(i64, i64, Uuid), StoreError> {
        match self.decode()?.split(':').collect::<Vec<_>>().as_slice() {
            ["s", last_used_at, created_at, id] => {
                Ok((number(last_used_at)?, number(created_at)?, uuid(id)?))
            }
            _ => Err(StoreError::InvalidCursor),
        }
    }

    pub(crate) fn encode(key: &str) -> Self {
        Self(URL_SAFE_NO_PAD.encode(key))
    }

    pub(crate) fn decode(&self) -> Result<String, StoreError> {
        if self.0.len() > MAX_CURSOR_CHARS {
            return Err(StoreError::InvalidCursor);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| StoreError::InvalidCursor)?;
        String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)
    }
}

/// The longest cursor text a store makes with the constructors above (with
/// room to spare); longer input is refused before decoding.
const MAX_CURSOR_CHARS: usize = 128;

fn number(text: &str) -> Result<i64, StoreError> {
    text.parse().map_err(|_| StoreError::InvalidCursor)
}

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::InvalidCursor)
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

#[cfg(test)]
mod cursor_tests {
    use super::*;

    #[test]
    fn cursors_read_back_to_their_keys_and_refuse_everything_else() {
        let id = Uuid::from_u128(0x0b6f3c1e_5d2a_4f8e_9c47_2a1d6e8b3f90);
        assert_eq!(
            PageCursor::after_api_key(42, id).api_key_position().ok(),
            Some((42, id))
        );
        assert_eq!(
            PageCursor::after_session(7, 3, id).session_position().ok(),
            Some((7, 3, id))
        );
        assert_eq!(PageCursor::after_user(12).user_position().ok(), Some(12));
        let invalid =
            |result: Result<(), StoreError>| matches!(result, Err(StoreError::InvalidCursor));
        for garbled in ["", "!!!", "bm9wZQ", &"A".repeat(200)] {
            let cursor = PageCursor::new(garbled);
            assert!(invalid(cursor.api_key_position().map(|_| ())), "{garbled}");
            assert!(invalid(cursor.session_position().map(|_| ())), "{garbled}");
            assert!(invalid(cursor.user_position().map(|_| ())), "{garbled}");
        }
        // One listing's cursor is no good for another.
        let key = PageCursor::after_api_key(42, id);
        assert!(invalid(key.session_position().map(|_| ())));
        assert!(invalid(key.user_position().map(|_| ())));
        // The rowid a first-wave cursor was is no cursor now.
        assert!(invalid(PageCursor::new("42").user_position().map(|_| ())));
    }
}
