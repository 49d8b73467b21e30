//! Strings whose OpenAPI schema says more than `type: string`.
//!
//! The request DTOs are parsed with serde and checked by `validator` and the
//! domain (see [`crate::payload`]), so these types change nothing about what
//! is accepted: they deserialize any JSON string. They exist so that the
//! document tells clients (and schema-driven fuzzers) the real rules: an
//! email address has `format: email`, a role or scope is one of a closed set
//! of names.

use std::borrow::Cow;
use std::ops::Deref;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde::{Deserialize, Serialize};
use serde_json::Value;

macro_rules! documented_string {
    ($(#[$docs:meta])* $ty:ident, $name:literal, $schema:expr) => {
        $(#[$docs])*
        #[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(transparent)]
        pub struct $ty(pub String);

        impl $ty {
            /// The string as sent.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $ty {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Type for $ty {
            const IS_REQUIRED: bool = true;

            type RawValueType = Self;

            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            fn schema_ref() -> MetaSchemaRef {
                let schema: MetaSchema = $schema;
                MetaSchemaRef::Inline(Box::new(schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value.unwrap_or_default() {
                    Value::String(text) => Ok(Self(text)),
                    other => Err(ParseError::expected_type(other)),
                }
            }
        }

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

fn one_of(names: &[&str]) -> MetaSchema {
    MetaSchema {
        enum_items: names.iter().map(|name| Value::from(*name)).collect(),
        ..MetaSchema::new("string")
    }
}

documented_string!(
    /// An email address as sent, checked by the domain (`EmailAddress::parse`:
    /// HTML5 syntax extended to internationalised addresses); documented as
    /// `format: email`.
    EmailString,
    "string_email",
    MetaSchema::new_with_format("string", "email")
);

documented_string!(
    /// A role name: `user` or `admin`. Other names are refused by the domain
    /// with a 422 on the list that contains them.
    RoleName,
    "string_role",
    one_of(&["user", "admin"])
);

documented_string!(
    /// A scope name: `profile`, `admin` or `introspect`. Other names are
    /// refused with a 422 on the list that contains them.
    ScopeName,
    "string_scope",
    one_of(&["profile", "admin", "introspect"])
);

documented_string!(
    /// The `X-Request-Id` every response carries (see the middleware): the
    /// client's when it is plain and short, else a new UUID.
    RequestId,
    "string_request_id",
    MetaSchema {
        max_length: Some(128),
        pattern: Some("^[A-Za-z0-9._:-]{1,128}$".to_owned()),
        ..MetaSchema::new("string")
    }
);

impl validator::ValidateLength<u64> for EmailString {
    fn length(&self) -> Option<u64> {
        u64::try_from(self.0.chars().count()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_json_string_is_accepted_and_the_schema_documents_the_rule() {
        let role: RoleName = serde_json::from_value(Value::from("root")).unwrap();
        assert_eq!(&*role, "root", "the domain, not serde, refuses it");
        let MetaSchemaRef::Inline(schema) = RoleName::schema_ref() else {
            panic!("inline schema");
        };
        assert_eq!(
            schema.enum_items,
            [Value::from("user"), Value::from("admin")]
        );
        let MetaSchemaRef::Inline(schema) = EmailString::schema_ref() else {
            panic!("inline schema");
        };
        assert_eq!(schema.format, Some("email"));
    }
}
