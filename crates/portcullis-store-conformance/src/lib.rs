//! The store conformance suite: every promise of the domain's store traits
//! ([`Store`](portcullis_domain::ports::Store) = `UserStore + SessionStore +
//! ApiKeyStore + SigningKeyStore + AuditStore`), written once as generic async functions in [`promises`]
//! and run against every implementation by [`store_conformance_suite!`]:
//! the SQLite store (in `portcullis-sqlite`'s tests), the in-memory
//! [`MemoryStore`] (in this crate's tests), and any later backend. A backend
//! is done when the suite passes unchanged.
//!
//! The promises are the port documentation made executable: lookups,
//! conflicts, stamps taken from the caller's `now`, the end of every
//! credential on disable, demotion narrowing, deletion, the last-admin rule,
//! idle and absolute expiry, rotation and reuse detection, the session and
//! key caps, keyset paging and opaque cursors, and the concurrency promises
//! (of N concurrent rotations exactly one wins; concurrent inserts,
//! demotions and creations never break a rule), and the signing keys'
//! life (installed once, rotated one step at a time by one node, deleted
//! only when retired and due), and the audit log (each change's event
//! appended with it and only when it happens, one gapless chain that
//! verifies under concurrent appends, exact filtered listing, pruning to a
//! sealed checkpoint). They use only the ports, never a backend's tables.
//!
//! ```text
//! mod conformance {
//!     portcullis_store_conformance::store_conformance_suite!(async {
//!         // A fresh, empty store holding `fixtures::test_audit_key()`
//!         // (a new `MemoryStore` already does; a real store is given it
//!         // with its `set_audit_key`), and anything that must live as long
//!         // as the test (here, nothing).
//!         (std::sync::Arc::new(MemoryStore::default()), ())
//!     });
//! }
//! ```

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test suite: a broken promise panics, saying which"
)]

pub mod fixtures;
mod memory;
pub mod promises;

pub use memory::MemoryStore;

/// Expands to one `#[tokio::test]` per promise in [`promises`], each on a
/// fresh store made by `$fresh`: an expression (usually an `async` block)
/// evaluating to a future of `(Arc<S>, guard)` with `S: Store + 'static`;
/// the guard (a temporary directory, a database name) is kept until the
/// test ends. The caller needs `tokio` with the `macros` and
/// `rt-multi-thread` features; tests run on a multi-threaded runtime so
/// that the concurrency promises meet real parallelism.
#[macro_export]
macro_rules! store_conformance_suite {
    ($fresh:expr) => {
        $crate::store_conformance_suite!(@promises $fresh;
            users::an_inserted_user_is_found_by_username_and_by_id,
            users::a_taken_username_or_email_is_a_conflict_and_stores_nothing,
            users::of_concurrent_inserts_of_one_username_exactly_one_succeeds,
            users::a_password_hash_update_replaces_the_hash,
            users::a_profile_update_changes_only_what_it_names,
            users::disabling_ends_every_credential_and_enabling_revives_none,
            users::a_demotion_narrows_every_grant_for_good,
            users::a_password_change_ends_every_other_session,
            users::deleting_a_user_removes_everything_of_it_and_nothing_else,
            users::an_idle_store_is_healthy_and_writable,
            admin::an_admin_change_applies_every_field_or_none,
            admin::an_admin_disable_ends_every_credential_and_other_changes_do_not,
            admin::the_last_enabled_admin_stays,
            admin::two_admins_demoting_each_other_at_once_leave_one,
            sessions::a_new_session_is_active_for_its_user_only,
            sessions::a_session_ends_at_its_expiry_or_when_idle,
            sessions::a_session_of_a_disabled_user_is_not_active,
            sessions::revoking_a_session_ends_it_once_and_only_the_owners,
            sessions::revoking_a_users_sessions_counts_and_spares_the_kept_one,
            sessions::a_session_past_the_cap_ends_the_least_recently_used,
            sessions::concurrent_session_creations_never_pass_the_cap,
            sessions::a_session_of_an_unknown_user_is_not_found,
            sessions::the_session_listing_is_live_sessions_by_recency_in_exact_pages,
            sessions::the_purge_deletes_dead_sessions_and_keeps_reuse_detection,
            refresh::rotating_the_current_token_makes_the_replacement_current,
            refresh::replaying_a_used_token_ends_the_session,
            refresh::a_token_of_an_ended_session_is_rejected_without_change,
            refresh::of_concurrent_rotations_of_one_token_exactly_one_rotates,
            refresh::the_owner_of_a_token_is_found_in_any_state,
            api_keys::a_key_authenticates_and_its_use_is_recorded_at_most_once_a_minute,
            api_keys::unusable_keys_do_not_authenticate,
            api_keys::the_key_listing_is_unrevoked_keys_newest_first_in_exact_pages,
            api_keys::a_key_is_revoked_once_and_only_by_its_owner,
            api_keys::the_key_cap_counts_live_keys_only,
            api_keys::concurrent_key_creations_never_pass_the_cap,
            listing::users_are_listed_in_creation_order_in_exact_pages,
            listing::users_added_or_deleted_between_pages_disturb_no_page,
            listing::search_matches_username_or_email_substrings_literally,
            listing::a_cursor_the_store_did_not_make_is_invalid,
            signing_keys::installed_keys_are_kept_exactly_and_installed_once,
            signing_keys::of_concurrent_installs_exactly_one_installs,
            signing_keys::a_rotation_moves_every_key_one_step_once,
            signing_keys::a_rotation_without_a_next_key_makes_the_new_key_current,
            signing_keys::of_concurrent_rotations_exactly_one_rotates,
            signing_keys::only_retired_keys_past_their_time_are_deleted,
            audit::every_change_appends_its_event_in_order_and_the_chain_verifies,
            audit::a_change_that_fails_or_finds_nothing_appends_nothing,
            audit::a_reused_refresh_token_and_the_session_cap_are_audited,
            audit::disable_and_role_changes_by_username_are_about_the_account,
            audit::concurrent_appends_form_one_gapless_chain,
            audit::the_audit_listing_filters_and_pages_exactly,
            audit::pruning_keeps_a_verifiable_chain,
            audit::an_empty_store_has_an_empty_whole_chain,
        );
    };
    (@promises $fresh:expr; $($module:ident :: $promise:ident,)*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $promise() {
                let (store, _guard) = $fresh.await;
                $crate::promises::$module::$promise(store).await;
            }
        )*
    };
}
