//! The metrics these adapters record, through the `metrics` facade: with no
//! recorder installed (a library user who wants none) every call is a no-op.
//! The binary installs the Prometheus recorder and calls [`describe`].

/// Password hashes waiting for a hashing thread (gauge).
pub const HASHING_QUEUE_DEPTH: &str = "portcullis_hashing_queue_depth";
/// How many hashes may wait for a hashing thread before `Busy` (gauge).
pub const HASHING_QUEUE_CAPACITY: &str = "portcullis_hashing_queue_capacity";
/// Time one argon2id computation took on its thread, by `operation`
/// (`hash`, `verify`) (histogram, seconds).
pub const PASSWORD_HASH_DURATION_SECONDS: &str = "portcullis_password_hash_duration_seconds";
/// Hashing jobs refused as busy: queue full or waited past the deadline.
pub const HASHING_BUSY_TOTAL: &str = "portcullis_hashing_busy_total";
/// Attempts refused by a rate limiter, by `limiter` (`ip`, `user`,
/// `api_key_creation`) and `scope` (`node`, `deployment`).
pub const RATE_LIMITED_TOTAL: &str = "portcullis_rate_limited_total";

/// Gives every metric above its unit and help text. Harmless to call again.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        HASHING_QUEUE_DEPTH,
        Unit::Count,
        "Password hashes waiting for a hashing thread."
    );
    describe_gauge!(
        HASHING_QUEUE_CAPACITY,
        Unit::Count,
        "Password hashes that may wait before new ones are refused as busy."
    );
    describe_histogram!(
        PASSWORD_HASH_DURATION_SECONDS,
        Unit::Seconds,
        "Time one argon2id hash or verification took on its thread."
    );
    describe_counter!(
        HASHING_BUSY_TOTAL,
        Unit::Count,
        "Password hashes refused because the hashing queue was full or the wait too long."
    );
    describe_counter!(
        RATE_LIMITED_TOTAL,
        Unit::Count,
        "Attempts refused by a rate limiter, by limiter and scope (node or deployment)."
    );
}

/// Counts one refusal of `limiter` (`ip`, `user`, `api_key_creation`) by
/// the `scope`'s budget (`node`, `deployment`).
pub(crate) fn rate_limited(limiter: &'static str, scope: &'static str) {
    metrics::counter!(RATE_LIMITED_TOTAL, "limiter" => limiter, "scope" => scope).increment(1);
}
