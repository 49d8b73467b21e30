//! Listing cursors in this store's terms. The encoding is the domain's
//! ([`PageCursor::after_user`] and its siblings, shared by every store);
//! this store keeps ids as hyphenated lower-case text, so the ids a cursor
//! holds are turned into that text and back here.

use portcullis_domain::{PageCursor, StoreError};
use uuid::Uuid;

/// Reads an API-key cursor back: `(created_at, id as stored)`.
pub(crate) fn read_api_key_cursor(cursor: &PageCursor) -> Result<(i64, String), StoreError> {
    let (created_at, id) = cursor.api_key_position()?;
    Ok((created_at, id.hyphenated().to_string()))
}

/// The position after the session `id` (as stored) in the session listing.
pub(crate) fn session_cursor(
    last_used_at: i64,
    created_at: i64,
    id: &str,
) -> Result<PageCursor, StoreError> {
    let id = Uuid::parse_str(id)
        .map_err(|_| StoreError::Failed("a stored session id is not a UUID".to_owned()))?;
    Ok(PageCursor::after_session(last_used_at, created_at, id))
}

/// Reads a session cursor back: `(last_used_at, created_at, id as stored)`.
pub(crate) fn read_session_cursor(cursor: &PageCursor) -> Result<(i64, i64, String), StoreError> {
    let (last_used_at, created_at, id) = cursor.session_position()?;
    Ok((last_used_at, created_at, id.hyphenated().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_into_cursors_as_stored_text_and_come_back_the_same() {
        let id = "0b6f3c1e-5d2a-4f8e-9c47-2a1d6e8b3f90";
        let cursor = session_cursor(7, 3, id).ok();
        assert_eq!(
            cursor
                .as_ref()
                .map(read_session_cursor)
                .and_then(Result::ok),
            Some((7, 3, id.to_owned()))
        );
        let key = PageCursor::after_api_key(42, Uuid::parse_str(id).unwrap_or_default());
        assert_eq!(read_api_key_cursor(&key).ok(), Some((42, id.to_owned())));
        assert!(matches!(
            session_cursor(1, 1, "not-a-uuid"),
            Err(StoreError::Failed(_))
        ));
    }
}
