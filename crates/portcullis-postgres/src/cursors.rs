//! Listing cursors: the sort key of the last item on a page, base64url
//! encoded, so that the next page is a range scan after it (keyset paging:
//! no item is skipped or repeated when items before the cursor come or go).
//!
//! The encoding is this crate's business: clients and the domain pass the
//! text back unchanged, and anything that does not decode to a key of the
//! right listing is [`StoreError::InvalidCursor`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_domain::{PageCursor, StoreError};
use uuid::Uuid;

/// The longest cursor text this store makes (with room to spare); longer
/// input is refused before decoding.
const MAX_CURSOR_CHARS: usize = 128;

/// The position after the user with primary key `pk` in the user listing.
pub(crate) fn user_cursor(pk: i64) -> PageCursor {
    encode(&format!("u:{pk}"))
}

/// Reads a [`user_cursor`] back: the primary key.
pub(crate) fn read_user_cursor(cursor: &PageCursor) -> Result<i64, StoreError> {
    let text = decode(cursor)?;
    match text.split(':').collect::<Vec<_>>().as_slice() {
        ["u", pk] => number(pk),
        _ => Err(StoreError::InvalidCursor),
    }
}

/// The position after API key `id` created at `created_at` (unix seconds)
/// in the newest-first key listing.
pub(crate) fn api_key_cursor(created_at: i64, id: Uuid) -> PageCursor {
    encode(&format!("k:{created_at}:{id}"))
}

/// Reads an [`api_key_cursor`] back: `(created_at, id)`.
pub(crate) fn read_api_key_cursor(cursor: &PageCursor) -> Result<(i64, Uuid), StoreError> {
    let text = decode(cursor)?;
    match text.split(':').collect::<Vec<_>>().as_slice() {
        ["k", created_at, id] => Ok((number(created_at)?, uuid(id)?)),
        _ => Err(StoreError::InvalidCursor),
    }
}

/// The position after session `id` in the most-recently-used-first session
/// listing, by its `last_used_at` and `created_at` (unix seconds).
pub(crate) fn session_cursor(last_used_at: i64, created_at: i64, id: Uuid) -> PageCursor {
    encode(&format!("s:{last_used_at}:{created_at}:{id}"))
}

/// Reads a [`session_cursor`] back: `(last_used_at, created_at, id)`.
pub(crate) fn read_session_cursor(cursor: &PageCursor) -> Result<(i64, i64, Uuid), StoreError> {
    let text = decode(cursor)?;
    match text.split(':').collect::<Vec<_>>().as_slice() {
        ["s", last_used_at, created_at, id] => {
            Ok((number(last_used_at)?, number(created_at)?, uuid(id)?))
        }
        _ => Err(StoreError::InvalidCursor),
    }
}

fn encode(key: &str) -> PageCursor {
    PageCursor::new(URL_SAFE_NO_PAD.encode(key))
}

fn decode(cursor: &PageCursor) -> Result<String, StoreError> {
    if cursor.as_str().len() > MAX_CURSOR_CHARS {
        return Err(StoreError::InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_str())
        .map_err(|_| StoreError::InvalidCursor)?;
    String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)
}

fn number(text: &str) -> Result<i64, StoreError> {
    text.parse().map_err(|_| StoreError::InvalidCursor)
}

/// A cursor holds ids in their hyphenated form.
fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_to_their_keys_and_refuse_everything_else() {
        let id = Uuid::from_u128(0x0b6f3c1e_5d2a_4f8e_9c47_2a1d6e8b3f90);
        assert_eq!(
            read_api_key_cursor(&api_key_cursor(42, id)).ok(),
            Some((42, id))
        );
        assert_eq!(
            read_session_cursor(&session_cursor(7, 3, id)).ok(),
            Some((7, 3, id))
        );
        assert_eq!(read_user_cursor(&user_cursor(12)).ok(), Some(12));
        let invalid =
            |result: Result<_, StoreError>| matches!(result, Err(StoreError::InvalidCursor));
        for garbled in ["", "!!!", "bm9wZQ", &"A".repeat(200)] {
            let cursor = PageCursor::new(garbled);
            assert!(
                invalid(read_api_key_cursor(&cursor).map(|_| ())),
                "{garbled}"
            );
            assert!(
                invalid(read_session_cursor(&cursor).map(|_| ())),
                "{garbled}"
            );
            assert!(invalid(read_user_cursor(&cursor).map(|_| ())), "{garbled}");
        }
        // One listing's cursor is no good for the other.
        assert!(invalid(
            read_session_cursor(&api_key_cursor(42, id)).map(|_| ())
        ));
        assert!(invalid(
            read_user_cursor(&api_key_cursor(42, id)).map(|_| ())
        ));
        // A bare number is no cursor.
        assert!(invalid(
            read_user_cursor(&PageCursor::new("42")).map(|_| ())
        ));
    }
}
