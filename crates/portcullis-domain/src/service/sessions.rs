//! Sessions: starting one, refreshing, revoking, listing and ending them.

use time::OffsetDateTime;

use super::{AuthService, ClientInfo, Principal, TokenGrant, clamp_page, later};
use crate::account::User;
use crate::audit::{AuditEvent, SessionEndReason};
use crate::error::AuthError;
use crate::listing::{Page, PageRequest};
use crate::scope::ScopeSet;
use crate::session::{
    AccessTokenClaims, NewSession, RefreshOutcome, SessionId, SessionInfo, new_token_id,
};

/// A refresh-token grant (RFC 6749 §6).
#[derive(Debug)]
pub struct RefreshRequest {
    /// The presented refresh token.
    pub refresh_token: String,
    /// Optional space-separated scopes narrowing the new access token; never
    /// more than the session was granted.
    pub scope: Option<String>,
    /// Where the request came from, for the audit event of a reuse.
    pub client: ClientInfo,
}

/// Which sessions a logout ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutScope {
    /// The caller's own session.
    Local,
    /// Every session of the caller.
    Global,
    /// Every session of the caller except the current one.
    Others,
}

/// What kind of token a revocation (RFC 7009 §2.1) or introspection
/// (RFC 7662 §2.1) request says it carries. Only a hint: every kind is
/// tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    /// An access token (JWT).
    AccessToken,
    /// An opaque refresh token.
    RefreshToken,
    /// An API key (`pcl_...`): introspection only; revocation does not
    /// revoke API keys (`DELETE /users/me/api-keys/{id}` does).
    ApiKey,
}

impl AuthService {
    pub(super) async fn start_session(
        &self,
        user: &User,
        scopes: ScopeSet,
        client: ClientInfo,
    ) -> Result<TokenGrant, AuthError> {
        let now = self.now();
        let session_id = SessionId::random();
        let (refresh_token, refresh_token_hash) = self.ports.secrets.new_refresh_token();
        let audit = self
            .audit_context(now, Some(user.id), &client)
            .record(Some(user.id), AuditEvent::LoginSucceeded { session_id });
        self.ports
            .store
            .create_session(
                &NewSession {
                    id: session_id,
                    user_id: user.id,
                    scopes,
                    refresh_token_hash,
                    created_at: now,
                    expires_at: later(now, self.settings.session_ttl)?,
                    ip: client.ip.map(|ip| ip.to_string()),
                    user_agent: client.user_agent,
                },
                self.settings.max_sessions_per_user,
                self.settings.session_idle_timeout,
                &audit,
            )
            .await?;
        let access_token = self.issue_access_token(user, session_id, scopes, now)?;
        Ok(TokenGrant {
            access_token,
            expires_in: self.settings.access_token_ttl,
            refresh_token,
            scopes,
            session_id,
        })
    }

    fn issue_access_token(
        &self,
        user: &User,
        session_id: SessionId,
        scopes: ScopeSet,
        now: OffsetDateTime,
    ) -> Result<String, AuthError> {
        self.ports
            .access_tokens
            .sign_access_token(&AccessTokenClaims {
                user_id: user.id,
                session_id,
                scopes,
                token_id: new_token_id(),
                issued_at: now,
                expires_at: later(now, self.settings.access_token_ttl)?,
            })
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    /// The refresh-token grant: rotates the presented token (one atomic store
    /// step) and issues a new access token for the same session. A token that
    /// was already rotated ends its whole session. Every failure is
    /// [`AuthError::InvalidGrant`], except a scope beyond the session's grant
    /// ([`AuthError::InvalidScope`], checked before anything changes).
    pub async fn refresh(&self, request: RefreshRequest) -> Result<TokenGrant, AuthError> {
        let presented = self
            .ports
            .secrets
            .hash_refresh_token(&request.refresh_token);
        let requested = match request.scope.as_deref() {
            None => None,
            Some(scope) => {
                // The scope is checked before the atomic rotation so that a
                // refused scope does not spend the token; the session's grant
                // never changes, so this read cannot race with it. A replayed
                // token skips the check: whatever scope it asks for, it must
                // reach the rotation, which ends its session.
                let owner = self
                    .ports
                    .store
                    .find_refresh_token_owner(&presented)
                    .await?
                    .ok_or(AuthError::InvalidGrant)?;
                let requested = ScopeSet::parse(scope);
                match requested {
                    _ if owner.already_used => None,
                    Ok(requested) if requested.is_subset_of(owner.scopes) => Some(requested),
                    Ok(_) | Err(_) => return Err(AuthError::InvalidScope),
                }
            }
        };
        let now = self.now();
        let (refresh_token, replacement) = self.ports.secrets.new_refresh_token();
        let outcome = self
            .ports
            .store
            .rotate_refresh_token(
                &presented,
                &replacement,
                now,
                self.settings.session_idle_timeout,
                &self.audit_context(now, None, &request.client),
            )
            .await?;
        let (user, session_id, granted) = match outcome {
            RefreshOutcome::Rotated {
                user,
                session_id,
                scopes,
            } => (user, session_id, scopes),
            RefreshOutcome::Reused { session_id } => {
                tracing::warn!(%session_id, "refresh token reused: session ended");
                return Err(AuthError::InvalidGrant);
            }
            RefreshOutcome::Rejected => return Err(AuthError::InvalidGrant),
        };
        let allowed = granted.intersection(user.role.allowed_scopes());
        let scopes = match requested {
            Some(requested) if !requested.is_empty() => requested.intersection(allowed),
            _ => allowed,
        };
        let access_token = self.issue_access_token(&user, session_id, scopes, now)?;
        Ok(TokenGrant {
            access_token,
            expires_in: self.settings.access_token_ttl,
            refresh_token,
            scopes,
            session_id,
        })
    }

    /// RFC 7009 revocation. Revoking either token of a session ends the
    /// whole session, so its access tokens stop working on the next request
    /// too. Unknown, malformed, expired or already-revoked tokens succeed
    /// silently, as the RFC requires; `hint` only orders the attempts.
    pub async fn revoke_token(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let context = self.audit_context(now, None, client);
        let ended = |session_id, user_id| {
            context.record(
                Some(user_id),
                AuditEvent::SessionEnded {
                    session_id,
                    reason: SessionEndReason::Revoked,
                },
            )
        };
        let access_first = match hint {
            Some(TokenTypeHint::AccessToken) => true,
            Some(TokenTypeHint::RefreshToken) => false,
            // JWTs have three dot-separated parts; refresh tokens have none.
            Some(TokenTypeHint::ApiKey) | None => token.contains('.'),
        };
        for access in [access_first, !access_first] {
            if access {
                if let Ok(claims) = self.ports.verifier.verify_access_token(token, self.now()) {
                    self.ports
                        .store
                        .revoke_session(
                            claims.session_id,
                            claims.user_id,
                            now,
                            &ended(claims.session_id, claims.user_id),
                        )
                        .await?;
                    return Ok(());
                }
            } else {
                let hash = self.ports.secrets.hash_refresh_token(token);
                if let Some(owner) = self.ports.store.find_refresh_token_owner(&hash).await? {
                    self.ports
                        .store
                        .revoke_session(
                            owner.session_id,
                            owner.user_id,
                            now,
                            &ended(owner.session_id, owner.user_id),
                        )
                        .await?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Ends the caller's session, all of their sessions, or all but this one.
    pub async fn logout(
        &self,
        principal: &Principal,
        scope: LogoutScope,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let user_id = principal.user.id;
        let current = principal.session_id();
        let context = self.audit_context(now, Some(user_id), client);
        match scope {
            // An API key or Basic credential has no session: nothing is local.
            LogoutScope::Local => {
                if let Some(session_id) = current {
                    let audit = context.record(
                        Some(user_id),
                        AuditEvent::SessionEnded {
                            session_id,
                            reason: SessionEndReason::Logout,
                        },
                    );
                    self.ports
                        .store
                        .revoke_session(session_id, user_id, now, &audit)
                        .await?;
                }
            }
            LogoutScope::Global => {
                self.ports
                    .store
                    .revoke_user_sessions(user_id, None, now, &context)
                    .await?;
            }
            LogoutScope::Others => {
                self.ports
                    .store
                    .revoke_user_sessions(user_id, current, now, &context)
                    .await?;
            }
        }
        Ok(())
    }

    /// One page of the caller's active sessions, most recently used first;
    /// paging as in [`list_api_keys`](Self::list_api_keys).
    pub async fn list_sessions(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<SessionInfo>, AuthError> {
        Ok(self
            .ports
            .store
            .list_active_sessions(
                principal.user.id,
                self.now(),
                self.settings.session_idle_timeout,
                &clamp_page(page),
            )
            .await?)
    }

    /// Ends one of the caller's sessions; [`AuthError::NotFound`] when it is
    /// not an active session of theirs.
    pub async fn end_session(
        &self,
        principal: &Principal,
        session_id: SessionId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let audit = self.own_record(
            now,
            principal,
            client,
            AuditEvent::SessionEnded {
                session_id,
                reason: SessionEndReason::EndedByUser,
            },
        );
        let ended = self
            .ports
            .store
            .revoke_session(session_id, principal.user.id, now, &audit)
            .await?;
        if ended {
            Ok(())
        } else {
            Err(AuthError::NotFound)
        }
    }

    /// Deletes sessions that can never be used again; returns how many.
    /// Meant to run periodically.
    pub async fn purge_dead_sessions(&self) -> Result<u64, AuthError> {
        Ok(self
            .ports
            .store
            .purge_dead_sessions(self.now(), self.settings.session_idle_timeout)
            .await?)
    }
}
