//! Random UUID identifiers: one macro, so that every id type is drawn,
//! wrapped and shown the same way, and `Uuid::new_v4` appears once.

/// Defines a `Copy` newtype over [`uuid::Uuid`] with `random`, `from_uuid`,
/// `as_uuid` and `Display`.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new random id (UUID v4).
            #[allow(
                clippy::disallowed_methods,
                reason = "the one place these ids are drawn"
            )]
            pub fn random() -> Self {
                Self(uuid::Uuid::new_v4())
            }

            /// Wraps an existing id (from storage or a verified token).
            pub fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

pub(crate) use uuid_id;
