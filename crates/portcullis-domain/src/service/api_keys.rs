//! The caller's API keys.

use std::time::Duration;

use super::{AuthService, ClientInfo, Principal, clamp_page, later, rate_limited};
use crate::api_key::{
    API_KEY_SHOWN_CHARS, ApiKeyId, ApiKeyInfo, ApiKeyName, MAX_API_KEY_DAYS, NewApiKey,
};
use crate::audit::AuditEvent;
use crate::error::{AuthError, FieldError};
use crate::listing::{Page, PageRequest};
use crate::scope::ScopeSet;

/// A new API key as requested.
#[derive(Debug)]
pub struct ApiKeyRequest {
    /// Label.
    pub name: String,
    /// Scope names, one per item; default (`None`): the creating
    /// credential's scopes. An empty list is refused.
    pub scopes: Option<Vec<String>>,
    /// Lifetime in days (1..=3650); default: no expiry.
    pub expires_in_days: Option<u32>,
}

impl AuthService {
    /// Creates an API key for the caller; the key itself is returned this
    /// once. Its scopes default to, and may not exceed, the creating
    /// credential's scopes, so a narrowed token cannot mint a wider key.
    ///
    /// Bounded twice: every well-formed request spends the caller's creation budget
    /// ([`AttemptLimiter::check_api_key_creation`](crate::ports::AttemptLimiter::check_api_key_creation), refused with
    /// [`AuthError::RateLimited`]), and a caller who already has
    /// [`AuthSettings::max_api_keys_per_user`](crate::AuthSettings::max_api_keys_per_user) live keys gets
    /// [`AuthError::ApiKeyLimitReached`].
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        request: ApiKeyRequest,
        client: &ClientInfo,
    ) -> Result<(ApiKeyInfo, String), AuthError> {
        let mut errors = Vec::new();
        let name = ApiKeyName::parse(&request.name)
            .map_err(|e| errors.push(e))
            .ok();
        let scopes = match request.scopes.as_deref().map(ScopeSet::parse_list) {
            None => principal.scopes,
            // An explicit empty list would mean "a key that can do nothing";
            // silently widening it to everything would be worse.
            Some(Ok(scopes)) if scopes.is_empty() => {
                errors.push(FieldError::new("scopes", "must name at least one scope"));
                principal.scopes
            }
            Some(Ok(scopes)) if scopes.is_subset_of(principal.scopes) => scopes,
            Some(Ok(_)) => {
                errors.push(FieldError::new(
                    "scopes",
                    "must not exceed the scopes of the credential creating the key",
                ));
                principal.scopes
            }
            Some(Err(_)) => {
                errors.push(FieldError::new("scopes", "contains an unknown scope"));
                principal.scopes
            }
        };
        if let Some(days) = request.expires_in_days
            && !(1..=MAX_API_KEY_DAYS).contains(&days)
        {
            errors.push(FieldError::new(
                "expires_in_days",
                format!("must be between 1 and {MAX_API_KEY_DAYS}"),
            ));
        }
        let (Some(name), true) = (name, errors.is_empty()) else {
            return Err(AuthError::Validation(errors));
        };
        // After parsing: a request that could never create a key spends no
        // creation budget.
        self.ports
            .limiter
            .check_api_key_creation(principal.user.id)
            .await
            .map_err(rate_limited)?;
        let now = self.now();
        let (key, key_hash) = self.ports.secrets.new_api_key();
        let new_key = NewApiKey {
            id: ApiKeyId::random(),
            user_id: principal.user.id,
            prefix: key.chars().take(API_KEY_SHOWN_CHARS).collect(),
            name,
            key_hash,
            scopes,
            created_at: now,
            expires_at: request
                .expires_in_days
                .map(|days| later(now, Duration::from_secs(u64::from(days) * 86_400)))
                .transpose()?,
        };
        let audit = self.own_record(
            now,
            principal,
            client,
            AuditEvent::ApiKeyCreated {
                key_id: new_key.id,
                name: new_key.name.clone(),
                scopes,
            },
        );
        self.ports
            .store
            .create_api_key(&new_key, self.settings.max_api_keys_per_user, &audit)
            .await?;
        let info = ApiKeyInfo {
            id: new_key.id,
            name: new_key.name.as_str().to_owned(),
            prefix: new_key.prefix,
            scopes,
            created_at: now,
            last_used_at: None,
            expires_at: new_key.expires_at,
        };
        Ok((info, key))
    }

    /// One page of the caller's keys, newest first; never the keys
    /// themselves. The limit is clamped to 1..=[`MAX_LISTING_PAGE_SIZE`](crate::listing::MAX_LISTING_PAGE_SIZE); a
    /// cursor that is not one a listing returned is a validation error on
    /// `cursor`.
    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<ApiKeyInfo>, AuthError> {
        Ok(self
            .ports
            .store
            .list_api_keys(principal.user.id, &clamp_page(page))
            .await?)
    }

    /// Revokes one of the caller's keys; [`AuthError::NotFound`] otherwise.
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let audit = self.own_record(
            now,
            principal,
            client,
            AuditEvent::ApiKeyRevoked { key_id: id },
        );
        let revoked = self
            .ports
            .store
            .revoke_api_key(id, principal.user.id, now, &audit)
            .await?;
        if revoked {
            Ok(())
        } else {
            Err(AuthError::NotFound)
        }
    }
}
