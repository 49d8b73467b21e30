//! Token introspection (RFC 7662): what a resource server asks about a
//! token it was handed.
//!
//! Introspection answers for the three kinds of credential Portcullis
//! issues, with the same checks that authenticating them applies, so that
//! an answer is never more generous than a request with the token would
//! be: an access token must verify and its session must still be active, a
//! refresh token must be its session's current one, an API key must be
//! usable. Everything else is simply inactive; RFC 7662 §2.2 wants no
//! reason given, and the caller learns nothing it could use to probe.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{AuthService, TokenTypeHint};
use crate::account::{User, UserId};
use crate::api_key::{ApiKeyId, ApiKeyInfo, is_well_formed_api_key};
use crate::error::AuthError;
use crate::listing::{Page, PageRequest};
use crate::ports::{ActiveSession, AuthenticatedKey};
use crate::scope::ScopeSet;
use crate::session::{SessionId, SessionInfo};

/// The longest token introspection looks at. Every token Portcullis issues
/// is far shorter (an access token is well under 1 KiB); a longer one is
/// inactive without any verification or lookup.
pub const MAX_INTROSPECTED_TOKEN_CHARS: usize = 4096;

/// What kind of credential an introspected token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A JWT access token (RFC 9068).
    AccessToken,
    /// An opaque refresh token.
    RefreshToken,
    /// A personal API key (`pcl_...`).
    ApiKey,
}

/// An active token, as introspection describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// Which kind of credential it is.
    pub kind: TokenKind,
    /// Its user (`sub`, `username`), enabled.
    pub user: User,
    /// What the token may do now: its grant narrowed to what the account's
    /// current role allows, exactly as authenticating it would narrow it.
    pub scopes: ScopeSet,
    /// `iat`: when the token was issued (an access token's `iat`; a refresh
    /// token's issue at login or at its session's latest rotation; an API
    /// key's creation).
    pub issued_at: OffsetDateTime,
    /// `exp`: when it stops working (an access token's `exp`; the end of a
    /// refresh token's session unless it is used; an API key's expiry, `None`
    /// for a key that never expires).
    pub expires_at: Option<OffsetDateTime>,
    /// `jti`: an access token's id, or the API key's id; `None` for a
    /// refresh token.
    pub token_id: Option<Uuid>,
    /// `sid`: the session of an access or refresh token; `None` for an API
    /// key.
    pub session_id: Option<SessionId>,
}

impl AuthService {
    /// Introspects `token` (RFC 7662): `Some` for an active access token,
    /// refresh token or API key, `None` for anything else (unknown,
    /// malformed, expired, revoked, rotated, of a disabled account, or
    /// longer than [`MAX_INTROSPECTED_TOKEN_CHARS`]).
    ///
    /// Revocation-aware: every answer reads the store, so a token is
    /// inactive from the moment its session ends or its key is revoked.
    /// Asking changes nothing a request with the token would not change: a
    /// used refresh token is reported inactive without ending its session
    /// (reuse detection belongs to the refresh grant), and an API key's
    /// `last_used_at` moves exactly as when it authenticates (at most once
    /// a minute). `hint` (RFC 7662 §2.1) only orders the attempts; every
    /// kind is tried.
    ///
    /// Errors are the store's (unavailable, failed): never an answer about
    /// the token.
    pub async fn introspect(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<Option<ActiveToken>, AuthError> {
        if token.is_empty() || token.len() > MAX_INTROSPECTED_TOKEN_CHARS {
            return Ok(None);
        }
        for kind in attempt_order(token, hint) {
            let found = match kind {
                TokenKind::AccessToken => self.introspect_access_token(token).await?,
                TokenKind::RefreshToken => self.introspect_refresh_token(token).await?,
                TokenKind::ApiKey => self.introspect_api_key(token).await?,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    async fn introspect_access_token(&self, token: &str) -> Result<Option<ActiveToken>, AuthError> {
        let now = self.now();
        let Ok(claims) = self.ports.verifier.verify_access_token(token, now) else {
            return Ok(None);
        };
        let Some(ActiveSession {
            user,
            scopes: granted,
        }) = self
            .ports
            .store
            .find_active_session(
                claims.session_id,
                claims.user_id,
                now,
                self.settings.session_idle_timeout,
            )
            .await?
        else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        // The same narrowing as `authenticate_access_token`.
        let scopes = claims
            .scopes
            .intersection(granted)
            .intersection(user.role.allowed_scopes());
        Ok(Some(ActiveToken {
            kind: TokenKind::AccessToken,
            user,
            scopes,
            issued_at: claims.issued_at,
            expires_at: Some(claims.expires_at),
            token_id: Some(claims.token_id),
            session_id: Some(claims.session_id),
        }))
    }

    async fn introspect_refresh_token(
        &self,
        token: &str,
    ) -> Result<Option<ActiveToken>, AuthError> {
        let hash = self.ports.secrets.hash_refresh_token(token);
        let Some(owner) = self.ports.store.find_refresh_token_owner(&hash).await? else {
            return Ok(None);
        };
        if owner.already_used {
            return Ok(None);
        }
        let now = self.now();
        let idle_timeout = self.settings.session_idle_timeout;
        let Some(ActiveSession {
            user,
            scopes: granted,
        }) = self
            .ports
            .store
            .find_active_session(owner.session_id, owner.user_id, now, idle_timeout)
            .await?
        else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        // The times come from the session listing: a session ends at the
        // earlier of its absolute expiry and its idle limit, and its current
        // refresh token was issued when it was last used (login or rotation).
        let Some(session) = self.listed_session(user.id, owner.session_id, now).await? else {
            // Ended between the two reads.
            return Ok(None);
        };
        Ok(Some(session_refresh_token(user, granted, &session)))
    }

    async fn introspect_api_key(&self, key: &str) -> Result<Option<ActiveToken>, AuthError> {
        if !is_well_formed_api_key(key) {
            return Ok(None);
        }
        let hash = self.ports.secrets.hash_api_key(key);
        // The same store call as authenticating the key, so `last_used_at`
        // moves no more than a request with the key would move it.
        let Some(AuthenticatedKey {
            user,
            scopes: granted,
            key_id,
        }) = self
            .ports
            .store
            .authenticate_api_key(&hash, self.now())
            .await?
        else {
            return Ok(None);
        };
        let Some(info) = self.listed_api_key(user.id, key_id).await? else {
            // Revoked between the two reads.
            return Ok(None);
        };
        Ok(Some(api_key_token(user, granted, key_id, &info)))
    }

    /// The listing entry of one active session of `user_id`, page after
    /// page (a user has at most the configured number of sessions, so this
    /// is usually one page).
    async fn listed_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<SessionInfo>, AuthError> {
        let mut page = PageRequest::default();
        loop {
            let Page { items, next } = self
                .ports
                .store
                .list_active_sessions(user_id, now, self.settings.session_idle_timeout, &page)
                .await?;
            if let Some(found) = items.into_iter().find(|s| s.id == session_id) {
                return Ok(Some(found));
            }
            match next {
                Some(cursor) => page.after = Some(cursor),
                None => return Ok(None),
            }
        }
    }

    /// The listing entry of one unrevoked API key of `user_id`, paged like
    /// [`listed_session`](Self::listed_session).
    async fn listed_api_key(
        &self,
        user_id: UserId,
        key_id: ApiKeyId,
    ) -> Result<Option<ApiKeyInfo>, AuthError> {
        let mut page = PageRequest::default();
        loop {
            let Page { items, next } = self.ports.store.list_api_keys(user_id, &page).await?;
            if let Some(found) = items.into_iter().find(|k| k.id == key_id) {
                return Ok(Some(found));
            }
            match next {
                Some(cursor) => page.after = Some(cursor),
                None => return Ok(None),
            }
        }
    }
}

/// The kinds to try, most likely first: the hint's kind, else the one the
/// token's shape suggests (a JWT has dots, an API key its `pcl_` prefix).
fn attempt_order(token: &str, hint: Option<TokenTypeHint>) -> [TokenKind; 3] {
    use TokenKind::{AccessToken, ApiKey, RefreshToken};
    let first = match hint {
        Some(TokenTypeHint::AccessToken) => AccessToken,
        Some(TokenTypeHint::RefreshToken) => RefreshToken,
        Some(TokenTypeHint::ApiKey) => ApiKey,
        None if is_well_formed_api_key(token) => ApiKey,
        None if token.contains('.') => AccessToken,
        None => RefreshToken,
    };
    match first {
        AccessToken => [AccessToken, RefreshToken, ApiKey],
        RefreshToken => [RefreshToken, AccessToken, ApiKey],
        ApiKey => [ApiKey, AccessToken, RefreshToken],
    }
}

fn session_refresh_token(user: User, granted: ScopeSet, session: &SessionInfo) -> ActiveToken {
    ActiveToken {
        kind: TokenKind::RefreshToken,
        scopes: granted.intersection(user.role.allowed_scopes()),
        user,
        issued_at: session.last_used_at,
        expires_at: Some(session.expires_at),
        token_id: None,
        session_id: Some(session.id),
    }
}

fn api_key_token(
    user: User,
    granted: ScopeSet,
    key_id: ApiKeyId,
    info: &ApiKeyInfo,
) -> ActiveToken {
    ActiveToken {
        kind: TokenKind::ApiKey,
        scopes: granted.intersection(user.role.allowed_scopes()),
        user,
        issued_at: info.created_at,
        expires_at: info.expires_at,
        token_id: Some(key_id.as_uuid()),
        session_id: None,
    }
}
