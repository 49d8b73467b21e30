//! The admin user listing and the cursors of every listing.

use std::sync::Arc;

use portcullis_domain::ports::Store;
use portcullis_domain::{PageCursor, PageRequest, StoreError, User, UserListQuery, UserSearch};

use super::{create_key, insert, start};
use crate::fixtures::{DAY, audit_record, named, t0, user};

/// One page of users after `after`.
async fn page<S: Store + ?Sized>(
    store: &S,
    after: Option<PageCursor>,
    limit: u32,
    search: Option<&str>,
) -> (Vec<String>, Option<PageCursor>) {
    let page = store
        .list_users(&UserListQuery {
            after,
            limit,
            search: search.map(UserSearch::new),
        })
        .await
        .expect("list users");
    (
        page.users
            .iter()
            .map(|user| user.username.as_str().to_owned())
            .collect(),
        page.next_cursor,
    )
}

/// Every page of users, following the cursors.
async fn every_page<S: Store + ?Sized>(
    store: &S,
    limit: u32,
    search: Option<&str>,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let (names, next) = page(store, after, limit, search).await;
        pages.push(names);
        match next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

fn names(prefix: &str, count: usize) -> Vec<User> {
    (0..count).map(|n| named(&format!("{prefix}{n}"))).collect()
}

/// Users come in creation order, `limit` at a time; a last page that is
/// exactly full has no next cursor; a zero limit is served as one.
pub async fn users_are_listed_in_creation_order_in_exact_pages<S: Store + 'static>(store: Arc<S>) {
    for user in names("user", 7) {
        insert(&*store, &user).await;
    }
    let pages = every_page(&*store, 3, None).await;
    assert_eq!(
        pages,
        [
            vec!["user0", "user1", "user2"],
            vec!["user3", "user4", "user5"],
            vec!["user6"],
        ]
    );
    let exact = every_page(&*store, 7, None).await;
    assert_eq!(
        exact.len(),
        1,
        "a full last page has no next cursor: {exact:?}"
    );
    let (first, next) = page(&*store, None, 0, None).await;
    assert_eq!(first, ["user0"], "a zero limit is served as one");
    let (second, _) = page(&*store, next, 0, None).await;
    assert_eq!(second, ["user1"], "and its cursor moves forward");
}

/// Users added or deleted between pages are neither repeated nor skipped;
/// new ones appear on a later page.
pub async fn users_added_or_deleted_between_pages_disturb_no_page<S: Store + 'static>(
    store: Arc<S>,
) {
    let users = names("user", 4);
    for user in &users {
        insert(&*store, user).await;
    }
    let (first, next) = page(&*store, None, 2, None).await;
    assert_eq!(first, ["user0", "user1"]);
    // The user at the cursor goes, a new one comes.
    store
        .delete_user(users[1].id, &audit_record(t0()))
        .await
        .expect("delete");
    insert(&*store, &named("late")).await;
    let (second, next) = page(&*store, next, 2, None).await;
    assert_eq!(second, ["user2", "user3"]);
    let (third, next) = page(&*store, next, 2, None).await;
    assert_eq!(third, ["late"]);
    assert!(next.is_none());
}

/// Search matches a substring of the username or of the canonical email,
/// in any case, with `%`, `_` and `\` taken literally, and pages like the
/// full listing.
pub async fn search_matches_username_or_email_substrings_literally<S: Store + 'static>(
    store: Arc<S>,
) {
    for account in [
        user("alice", "alice@example.com"),
        user("bob", "bob@wonderland.example"),
        user("carol", "carol_1@example.com"),
        user("dave", "dave%@example.com"),
        user("erin", "erin@example.com"),
        user("frank", "frank@wonderland.example"),
    ] {
        insert(&*store, &account).await;
    }
    let all = |search: &'static str| {
        let store = store.clone();
        async move { every_page(&*store, 100, Some(search)).await.concat() }
    };
    assert_eq!(all("ALICE").await, ["alice"]);
    assert_eq!(all("wonderland").await, ["bob", "frank"]);
    assert_eq!(all("_").await, ["carol"], "underscore is literal");
    assert_eq!(all("%").await, ["dave"], "percent is literal");
    assert!(all("\\").await.is_empty(), "backslash is literal");
    assert!(
        all("a%e").await.is_empty(),
        "no LIKE pattern: alice does not match"
    );
    assert_eq!(all("").await.len(), 6, "an empty term matches everyone");
    assert_eq!(
        every_page(&*store, 1, Some("wonderland")).await,
        [vec!["bob"], vec!["frank"]],
        "search results page with cursors"
    );
}

/// A cursor this store did not make is refused as invalid in every
/// listing: garbage, a bare number (what a first-wave user cursor was),
/// and one listing's cursor in another.
pub async fn a_cursor_the_store_did_not_make_is_invalid<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    insert(&*store, &named("bob")).await;
    for _ in 0..2 {
        start(&*store, &alice, t0()).await;
        create_key(&*store, &alice, t0()).await;
    }
    let user_cursor = page(&*store, None, 1, None).await.1.expect("a next page");
    let first_page = PageRequest {
        limit: 1,
        after: None,
    };
    let session_cursor = store
        .list_active_sessions(alice.id, t0(), DAY, &first_page)
        .await
        .expect("list")
        .next
        .expect("a next page");
    let key_cursor = store
        .list_api_keys(alice.id, &first_page)
        .await
        .expect("list")
        .next
        .expect("a next page");
    let foreign = |own: &PageCursor| {
        let mut cursors: Vec<PageCursor> = ["", "garbage", "42", "bm90LWEtY3Vyc29y", "%27%3B--"]
            .into_iter()
            .map(PageCursor::new)
            .collect();
        cursors.push(PageCursor::new("A".repeat(300)));
        cursors.extend(
            [&user_cursor, &session_cursor, &key_cursor]
                .into_iter()
                .filter(|cursor| *cursor != own)
                .cloned(),
        );
        cursors
    };
    for cursor in foreign(&user_cursor) {
        let result = store
            .list_users(&UserListQuery {
                after: Some(cursor.clone()),
                limit: 10,
                search: None,
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor)),
            "users after {cursor:?}: {result:?}"
        );
    }
    for cursor in foreign(&session_cursor) {
        let request = PageRequest {
            limit: 10,
            after: Some(cursor.clone()),
        };
        let result = store
            .list_active_sessions(alice.id, t0(), DAY, &request)
            .await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor)),
            "sessions after {cursor:?}: {result:?}"
        );
    }
    for cursor in foreign(&key_cursor) {
        let request = PageRequest {
            limit: 10,
            after: Some(cursor.clone()),
        };
        let result = store.list_api_keys(alice.id, &request).await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor)),
            "keys after {cursor:?}: {result:?}"
        );
    }
}
