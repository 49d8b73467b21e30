//! The use-cases, written against the ports.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

mod verification;

use verification::TypedPasswordCheck;

use crate::account::{FullName, NewUser, ProfileChanges, Role, User, UserId, Username};
use crate::admin::{AdminUserChanges, MAX_PAGE_SIZE, UserListQuery, UserPage};
use crate::api_key::{
    API_KEY_SHOWN_CHARS, ApiKeyId, ApiKeyInfo, ApiKeyName, MAX_API_KEY_DAYS, NewApiKey,
    is_well_formed_api_key,
};
use crate::email::EmailAddress;
use crate::error::{AuthError, FieldError, StoreError};
use crate::listing::{MAX_LISTING_PAGE_SIZE, Page, PageRequest};
use crate::password::{Password, PasswordPolicy};
use crate::ports::{
    ApiKeyStore, AttemptLimiter, Clock, PasswordHasher, RateLimited, SessionStore, TokenIssuer,
    TokenVerifier, UserStore,
};
use crate::scope::{Scope, ScopeSet};
use crate::session::{AccessTokenClaims, NewSession, RefreshOutcome, SessionId, SessionInfo};

/// Lifetimes and rules the use-cases apply.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Absolute session (refresh) lifetime.
    pub session_ttl: Duration,
    /// A session unused this long expires.
    pub session_idle_timeout: Duration,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// Active sessions a user may have; a new one beyond it ends the least
    /// recently used.
    pub max_sessions_per_user: u32,
    /// Live (unrevoked, unexpired) API keys a user may have; creating one
    /// more is refused.
    pub max_api_keys_per_user: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(900),
            session_ttl: Duration::from_secs(2_592_000),
            session_idle_timeout: Duration::from_secs(604_800),
            password_policy: PasswordPolicy::default(),
            max_sessions_per_user: 100,
            max_api_keys_per_user: 100,
        }
    }
}

/// A registration as submitted. Parsing happens in [`AuthService::register`],
/// which reports every invalid field at once.
#[derive(Debug)]
pub struct RegistrationRequest {
    /// Desired username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Optional display name.
    pub full_name: Option<String>,
    /// The new password.
    pub password: Password,
}

/// Where a request came from, recorded on the session it creates.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client IP address as determined by the HTTP layer (socket peer, or
    /// the forwarded address when the peer is a trusted proxy).
    pub ip: Option<IpAddr>,
    /// `User-Agent` header, truncated by the HTTP layer.
    pub user_agent: Option<String>,
}

/// A password login (OAuth2 password grant or its JSON twin).
#[derive(Debug)]
pub struct LoginRequest {
    /// Username as typed; normalised here.
    pub username: String,
    /// Password as typed; verified whole.
    pub password: Password,
    /// Optional space-separated scopes that narrow the grant.
    pub scope: Option<String>,
    /// Client details for the session record.
    pub client: ClientInfo,
}

/// A refresh-token grant (RFC 6749 §6).
#[derive(Debug)]
pub struct RefreshRequest {
    /// The presented refresh token.
    pub refresh_token: String,
    /// Optional space-separated scopes narrowing the new access token; never
    /// more than the session was granted.
    pub scope: Option<String>,
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

/// What kind of token a revocation request says it carries (RFC 7009 §2.1).
/// Only a hint: both kinds are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    /// An access token (JWT).
    AccessToken,
    /// An opaque refresh token.
    RefreshToken,
}

/// A password change as submitted.
#[derive(Debug)]
pub struct PasswordChangeRequest {
    /// The password in force, re-verified.
    pub current_password: Password,
    /// The new password, checked against the policy.
    pub new_password: Password,
}

/// A new API key as requested.
#[derive(Debug)]
pub struct ApiKeyRequest {
    /// Label.
    pub name: String,
    /// Space-separated scopes; default (`None`): the creating credential's
    /// scopes. An empty list is refused.
    pub scopes: Option<String>,
    /// Lifetime in days (1..=3650); default: no expiry.
    pub expires_in_days: Option<u32>,
}

/// An admin's changes as submitted.
#[derive(Debug, Default)]
pub struct AdminUserUpdate {
    /// Disable (true) or enable (false).
    pub disabled: Option<bool>,
    /// Roles: must name `user` or `admin`; containing `admin` makes an admin.
    pub roles: Option<Vec<String>>,
    /// New email address.
    pub email: Option<String>,
    /// New display name; `Some(None)` clears it.
    pub full_name: Option<Option<String>>,
}

/// Profile changes as submitted.
#[derive(Debug, Default)]
pub struct ProfileUpdateRequest {
    /// New email address.
    pub email: Option<String>,
    /// New display name; `Some(None)` clears it.
    pub full_name: Option<Option<String>>,
    /// The password in force: required (and re-verified) whenever `email`
    /// is present; ignored otherwise.
    pub current_password: Option<Password>,
}

/// The tokens a successful grant returns.
#[derive(Debug)]
pub struct TokenGrant {
    /// Signed JWT access token.
    pub access_token: String,
    /// Lifetime of the access token.
    pub expires_in: Duration,
    /// Opaque refresh token, shown to the client once and stored only as a hash.
    pub refresh_token: String,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// The session the grant belongs to.
    pub session_id: SessionId,
}

/// How a caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A bearer access token of this session.
    Session(SessionId),
    /// This API key.
    ApiKey(ApiKeyId),
    /// HTTP Basic: username and password on this request.
    Basic,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The caller's account, freshly loaded for this request.
    pub user: User,
    /// What this credential may do: its granted scopes, narrowed to what the
    /// account's current role allows.
    pub scopes: ScopeSet,
    /// The credential used.
    pub credential: Credential,
}

impl Principal {
    /// The session of a bearer credential.
    pub fn session_id(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::ApiKey(_) | Credential::Basic => None,
        }
    }

    /// Fails with [`AuthError::InsufficientScope`] unless the credential
    /// carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope(scope))
        }
    }
}

/// Everything the use-cases need from the outside world.
#[derive(Clone)]
pub struct Ports {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Sessions and refresh tokens.
    pub sessions: Arc<dyn SessionStore>,
    /// API keys.
    pub api_keys: Arc<dyn ApiKeyStore>,
    /// Password hashing.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Token issuing.
    pub issuer: Arc<dyn TokenIssuer>,
    /// Token verification.
    pub verifier: Arc<dyn TokenVerifier>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Credential-check limits.
    pub limiter: Arc<dyn AttemptLimiter>,
}

/// The authentication use-cases.
///
/// Cheap to clone: every port is behind an `Arc`.
#[derive(Clone)]
pub struct AuthService {
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    api_keys: Arc<dyn ApiKeyStore>,
    hasher: Arc<dyn PasswordHasher>,
    issuer: Arc<dyn TokenIssuer>,
    verifier: Arc<dyn TokenVerifier>,
    clock: Arc<dyn Clock>,
    limiter: Arc<dyn AttemptLimiter>,
    settings: AuthSettings,
}

impl AuthService {
    /// Assembles the service from its ports.
    pub fn new(ports: Ports, settings: AuthSettings) -> Self {
        Self {
            users: ports.users,
            sessions: ports.sessions,
            api_keys: ports.api_keys,
            hasher: ports.hasher,
            issuer: ports.issuer,
            verifier: ports.verifier,
            clock: ports.clock,
            limiter: ports.limiter,
            settings,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Creates an ordinary account. Counts as a credential check for the
    /// attempt limiter (per client address and per requested username).
    pub async fn register(
        &self,
        request: RegistrationRequest,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        self.limit_attempt(client.ip, &request.username)?;
        self.create_user(request, Role::User).await
    }

    /// Consults the attempt limiter before a credential check.
    fn limit_attempt(&self, client_ip: Option<IpAddr>, username: &str) -> Result<(), AuthError> {
        // Normalised like a username (so case flips share one budget) and
        // bounded (so junk names cannot grow the limiter's memory per key).
        let key: String = username
            .trim()
            .chars()
            .take(64)
            .collect::<String>()
            .to_ascii_lowercase();
        self.limiter
            .check_attempt(client_ip, &key)
            .map_err(rate_limited)
    }

    /// Creates an account with the given role (the CLI uses this to make the
    /// first admin). Every invalid field is reported at once.
    pub async fn create_user(
        &self,
        request: RegistrationRequest,
        role: Role,
    ) -> Result<User, AuthError> {
        let mut errors = Vec::new();
        let username = Username::parse(&request.username)
            .map_err(|e| errors.push(e))
            .ok();
        let email = EmailAddress::parse(&request.email)
            .map_err(|e| errors.push(e))
            .ok();
        let full_name = request
            .full_name
            .as_deref()
            .map(FullName::parse)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        if let (Some(username), Some(email)) = (&username, &email)
            && let Err(error) =
                self.settings
                    .password_policy
                    .check(&request.password, username, email)
        {
            errors.push(error);
        }
        let (Some(username), Some(email), true) = (username, email, errors.is_empty()) else {
            return Err(AuthError::Validation(errors));
        };
        self.users.ensure_writable().await?;
        // The policy judged the NFKC form; that is also the form stored.
        let password_hash = self.hasher.hash_password(&request.password.nfkc()).await?;
        let user = User {
            id: UserId::random(),
            username,
            email,
            full_name,
            role,
            disabled: false,
            created_at: self.now_seconds(),
        };
        self.users
            .insert_user(&NewUser {
                user: user.clone(),
                password_hash,
            })
            .await?;
        Ok(user)
    }

    /// The OAuth2 password grant: verifies the credentials, starts a session
    /// and issues its tokens.
    ///
    /// Unknown user, wrong password and disabled account all fail with
    /// [`AuthError::InvalidGrant`] after the same hashing work.
    pub async fn login(&self, request: LoginRequest) -> Result<TokenGrant, AuthError> {
        // Unknown scope names are refused before any hashing: they reveal
        // nothing about the account.
        let requested = match request.scope.as_deref() {
            Some(scope) => Some(ScopeSet::parse(scope).map_err(|_| AuthError::InvalidScope)?),
            None => None,
        };
        let user = self
            .check_credentials(
                &request.username,
                &request.password,
                request.client.ip,
                true,
            )
            .await?;
        let scopes = grant_scopes(user.role, requested)?;
        self.start_session(&user, scopes, request.client).await
    }

    /// Verifies a username and password, rehashing a stored hash made with
    /// outdated parameters or from a password that was not NFKC-normalised.
    /// Used by the password grant and HTTP Basic. The attempt limiter is
    /// consulted first: over the limit, no hash is computed. The NFKC form
    /// of the password is verified, then (only when the two differ) the
    /// form as typed; a password that is not NFKC-stable always costs two
    /// verifications, whether the account exists or not.
    pub async fn verify_credentials(
        &self,
        username: &str,
        password: &Password,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        self.check_credentials(username, password, client_ip, false)
            .await
    }

    /// [`verify_credentials`](Self::verify_credentials); with `will_write`
    /// (a login, which then stores a session) the store is first asked
    /// whether it can write, so a locked database refuses before the hash.
    async fn check_credentials(
        &self,
        username: &str,
        password: &Password,
        client_ip: Option<IpAddr>,
        will_write: bool,
    ) -> Result<User, AuthError> {
        self.limit_attempt(client_ip, username)?;
        if will_write {
            self.users.ensure_writable().await?;
        }
        let credentials = match Username::parse(username) {
            Ok(username) => self.users.find_credentials(&username).await?,
            Err(_) => None,
        };
        let stored_hash = credentials.as_ref().map(|c| &c.password_hash);
        let verification = self.verify_typed_password(password, stored_hash).await?;
        let (Some(credentials), TypedPasswordCheck::Match { rehash }) = (credentials, verification)
        else {
            return Err(AuthError::InvalidGrant);
        };
        if credentials.user.disabled {
            return Err(AuthError::InvalidGrant);
        }
        if rehash {
            // Outdated parameters, or a hash of a non-normalised password:
            // store a current hash of the NFKC form. A failed rehash must
            // not fail the login: the old hash still works.
            match self.hasher.hash_password(&password.nfkc()).await {
                Ok(hash) => {
                    if let Err(error) = self
                        .users
                        .update_password_hash(credentials.user.id, &hash)
                        .await
                    {
                        tracing::warn!(user_id = %credentials.user.id, %error, "password rehash not stored");
                    }
                }
                Err(error) => {
                    tracing::warn!(user_id = %credentials.user.id, %error, "password rehash failed");
                }
            }
        }
        Ok(credentials.user)
    }

    /// Authenticates a bearer access token: verifies it, then checks that its
    /// user exists and is enabled and that its session is still active, so a
    /// revocation takes effect on the very next request.
    pub async fn authenticate_access_token(&self, token: &str) -> Result<Principal, AuthError> {
        let now = self.clock.now();
        let claims = self
            .verifier
            .verify_access_token(token, now)
            .map_err(|_| AuthError::InvalidToken)?;
        let (user, granted) = self
            .sessions
            .find_active_session(
                claims.session_id,
                claims.user_id,
                now,
                self.settings.session_idle_timeout,
            )
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if user.disabled {
            return Err(AuthError::InvalidToken);
        }
        // The token's scopes can never exceed what the session was granted or
        // what the account's role allows today.
        let scopes = claims
            .scopes
            .intersection(granted)
            .intersection(user.role.allowed_scopes());
        Ok(Principal {
            user,
            scopes,
            credential: Credential::Session(claims.session_id),
        })
    }

    /// Authenticates an `X-API-Key`. A key without the Portcullis shape is
    /// refused without touching the store.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Principal, AuthError> {
        if !is_well_formed_api_key(key) {
            return Err(AuthError::InvalidToken);
        }
        let hash = self.issuer.hash_api_key(key);
        let (user, granted, id) = self
            .api_keys
            .authenticate_api_key(&hash, self.now_seconds())
            .await?
            .ok_or(AuthError::InvalidToken)?;
        Ok(Principal {
            scopes: granted.intersection(user.role.allowed_scopes()),
            user,
            credential: Credential::ApiKey(id),
        })
    }

    /// Authenticates HTTP Basic credentials with the same timing-safe
    /// verification as a login. The principal gets every scope its role allows.
    pub async fn authenticate_basic(
        &self,
        username: &str,
        password: &Password,
        client_ip: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let user = self
            .verify_credentials(username, password, client_ip)
            .await
            .map_err(|error| match error {
                AuthError::InvalidGrant => AuthError::InvalidToken,
                other => other,
            })?;
        Ok(Principal {
            scopes: user.role.allowed_scopes(),
            user,
            credential: Credential::Basic,
        })
    }

    /// Creates an API key for the caller; the key itself is returned this
    /// once. Its scopes default to, and may not exceed, the creating
    /// credential's scopes, so a narrowed token cannot mint a wider key.
    ///
    /// Bounded twice: every attempt spends the caller's creation budget
    /// ([`AttemptLimiter::check_api_key_creation`], refused with
    /// [`AuthError::RateLimited`]), and a caller who already has
    /// [`AuthSettings::max_api_keys_per_user`] live keys gets
    /// [`AuthError::ApiKeyLimitReached`].
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        request: ApiKeyRequest,
    ) -> Result<(ApiKeyInfo, String), AuthError> {
        self.limiter
            .check_api_key_creation(principal.user.id)
            .map_err(rate_limited)?;
        let mut errors = Vec::new();
        let name = ApiKeyName::parse(&request.name)
            .map_err(|e| errors.push(e))
            .ok();
        let scopes = match request.scopes.as_deref().map(ScopeSet::parse) {
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
        let now = self.now_seconds();
        let (key, key_hash) = self.issuer.new_api_key();
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
        self.api_keys
            .create_api_key(&new_key, self.settings.max_api_keys_per_user)
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
    /// themselves. The limit is clamped to 1..=[`MAX_LISTING_PAGE_SIZE`]; a
    /// cursor that is not one a listing returned is a validation error on
    /// `cursor`.
    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<ApiKeyInfo>, AuthError> {
        Ok(self
            .api_keys
            .list_api_keys(principal.user.id, &clamp_page(page))
            .await?)
    }

    /// Revokes one of the caller's keys; [`AuthError::NotFound`] otherwise.
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
    ) -> Result<(), AuthError> {
        let revoked = self
            .api_keys
            .revoke_api_key(id, principal.user.id, self.now_seconds())
            .await?;
        if revoked {
            Ok(())
        } else {
            Err(AuthError::NotFound)
        }
    }

    /// One page of users (admin).
    pub async fn list_users(&self, mut query: UserListQuery) -> Result<UserPage, AuthError> {
        query.limit = query.limit.clamp(1, MAX_PAGE_SIZE);
        query.search = query.search.filter(|s| !s.as_str().is_empty());
        Ok(self.users.list_users(&query).await?)
    }

    /// One user by id (admin).
    pub async fn get_user(&self, id: UserId) -> Result<User, AuthError> {
        self.users.find_user(id).await?.ok_or(AuthError::NotFound)
    }

    /// Changes an account (admin). Disabling or demoting takes effect on the
    /// next request of every credential the user holds; the last enabled
    /// admin cannot be disabled or demoted.
    pub async fn admin_update_user(
        &self,
        id: UserId,
        update: AdminUserUpdate,
    ) -> Result<User, AuthError> {
        let mut errors = Vec::new();
        let role = match update.roles {
            None => None,
            Some(roles) => {
                let parsed: Option<Vec<Role>> = roles.iter().map(|r| Role::parse(r)).collect();
                match parsed {
                    Some(parsed) if !parsed.is_empty() => Some(if parsed.contains(&Role::Admin) {
                        Role::Admin
                    } else {
                        Role::User
                    }),
                    _ => {
                        errors.push(FieldError::new(
                            "roles",
                            "must list `user` and/or `admin`, nothing else",
                        ));
                        None
                    }
                }
            }
        };
        let profile = parse_profile_changes(update.email.as_deref(), update.full_name, &mut errors);
        if !errors.is_empty() {
            return Err(AuthError::Validation(errors));
        }
        let changes = AdminUserChanges {
            disabled: update.disabled,
            role,
            email: profile.email,
            full_name: profile.full_name,
        };
        Ok(self
            .users
            .admin_update_user(id, &changes, self.now_seconds())
            .await?)
    }

    /// Deletes an account (admin); the last enabled admin cannot be deleted.
    pub async fn admin_delete_user(&self, id: UserId) -> Result<(), AuthError> {
        Ok(self.users.delete_user(id).await?)
    }

    /// Changes the caller's email and/or display name.
    ///
    /// Changing the email re-authenticates: `current_password` is required
    /// and re-verified like a password change's, after the attempt limiter
    /// (per client address and the caller's username). Without that, any
    /// `profile` credential could change the address, and the 409 on a
    /// taken one answered an unthrottled, hash-free existence probe.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        request: ProfileUpdateRequest,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        let mut errors: Vec<FieldError> = Vec::new();
        let changes =
            parse_profile_changes(request.email.as_deref(), request.full_name, &mut errors);
        let reauthenticate_with = match (&request.email, request.current_password) {
            (None, _) => None,
            (Some(_), Some(password)) => Some(password),
            (Some(_), None) => {
                errors.push(FieldError::new(
                    "current_password",
                    "is required to change the email",
                ));
                None
            }
        };
        if !errors.is_empty() {
            return Err(AuthError::Validation(errors));
        }
        if let Some(password) = reauthenticate_with {
            self.limit_attempt(client_ip, principal.user.username.as_str())?;
            self.users.ensure_writable().await?;
            self.reverify_password(principal, &password, "current_password")
                .await?;
        }
        match self.users.update_profile(principal.user.id, &changes).await {
            Ok(user) => Ok(user),
            // The account vanished between authentication and update.
            Err(StoreError::NotFound) => Err(AuthError::InvalidToken),
            Err(error) => Err(error.into()),
        }
    }

    /// Succeeds when the user store can be read and could take a write
    /// within a short wait.
    pub async fn check_health(&self) -> Result<(), AuthError> {
        self.users.check_health().await?;
        Ok(self.users.ensure_writable().await?)
    }

    /// Disables or enables an account by username (CLI).
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<User, AuthError> {
        let username = Username::parse(username).map_err(|e| AuthError::Validation(vec![e]))?;
        Ok(self.users.set_disabled(&username, disabled).await?)
    }

    /// Changes an account's role by username (CLI).
    pub async fn set_role(&self, username: &str, role: Role) -> Result<User, AuthError> {
        let username = Username::parse(username).map_err(|e| AuthError::Validation(vec![e]))?;
        Ok(self.users.set_role(&username, role).await?)
    }

    /// The refresh-token grant: rotates the presented token (one atomic store
    /// step) and issues a new access token for the same session. A token that
    /// was already rotated ends its whole session. Every failure is
    /// [`AuthError::InvalidGrant`], except a scope beyond the session's grant
    /// ([`AuthError::InvalidScope`], checked before anything changes).
    pub async fn refresh(&self, request: RefreshRequest) -> Result<TokenGrant, AuthError> {
        let presented = self.issuer.hash_refresh_token(&request.refresh_token);
        let requested = match request.scope.as_deref() {
            None => None,
            Some(scope) => {
                // The scope is checked before the atomic rotation so that a
                // refused scope does not spend the token; the session's grant
                // never changes, so this read cannot race with it. A replayed
                // token skips the check: whatever scope it asks for, it must
                // reach the rotation, which ends its session.
                let owner = self
                    .sessions
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
        let now = self.now_seconds();
        let (refresh_token, replacement) = self.issuer.new_refresh_token();
        let outcome = self
            .sessions
            .rotate_refresh_token(
                &presented,
                &replacement,
                now,
                self.settings.session_idle_timeout,
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
    ) -> Result<(), AuthError> {
        let now = self.now_seconds();
        let access_first = match hint {
            Some(TokenTypeHint::AccessToken) => true,
            Some(TokenTypeHint::RefreshToken) => false,
            // JWTs have three dot-separated parts; refresh tokens have none.
            None => token.contains('.'),
        };
        for access in [access_first, !access_first] {
            if access {
                if let Ok(claims) = self.verifier.verify_access_token(token, self.clock.now()) {
                    self.sessions
                        .revoke_session(claims.session_id, claims.user_id, now)
                        .await?;
                    return Ok(());
                }
            } else {
                let hash = self.issuer.hash_refresh_token(token);
                if let Some(owner) = self.sessions.find_refresh_token_owner(&hash).await? {
                    self.sessions
                        .revoke_session(owner.session_id, owner.user_id, now)
                        .await?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Ends the caller's session, all of their sessions, or all but this one.
    pub async fn logout(&self, principal: &Principal, scope: LogoutScope) -> Result<(), AuthError> {
        let now = self.now_seconds();
        let user_id = principal.user.id;
        let current = principal.session_id();
        match scope {
            // An API key or Basic credential has no session: nothing is local.
            LogoutScope::Local => {
                if let Some(session_id) = current {
                    self.sessions
                        .revoke_session(session_id, user_id, now)
                        .await?;
                }
            }
            LogoutScope::Global => {
                self.sessions
                    .revoke_user_sessions(user_id, None, now)
                    .await?;
            }
            LogoutScope::Others => {
                self.sessions
                    .revoke_user_sessions(user_id, current, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Changes the caller's password: the current one is re-verified, the new
    /// one must pass the policy, and every other session ends; the current
    /// session stays.
    pub async fn change_password(
        &self,
        principal: &Principal,
        request: PasswordChangeRequest,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let user = &principal.user;
        self.limit_attempt(client_ip, user.username.as_str())?;
        self.settings
            .password_policy
            .check_field(
                &request.new_password,
                "new_password",
                &user.username,
                &user.email,
            )
            .map_err(|error| AuthError::Validation(vec![error]))?;
        self.users.ensure_writable().await?;
        self.reverify_password(principal, &request.current_password, "current_password")
            .await?;
        let hash = self
            .hasher
            .hash_password(&request.new_password.nfkc())
            .await?;
        self.users
            .change_password(user.id, &hash, principal.session_id(), self.now_seconds())
            .await
            .map_err(gone_is_invalid_token)
    }

    /// Deletes the caller's account, its sessions and every credential of it,
    /// after re-verifying the password. The last enabled admin cannot delete
    /// itself ([`AuthError::LastAdmin`]).
    pub async fn delete_account(
        &self,
        principal: &Principal,
        password: &Password,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        self.limit_attempt(client_ip, principal.user.username.as_str())?;
        self.users.ensure_writable().await?;
        self.reverify_password(principal, password, "password")
            .await?;
        self.users
            .delete_user(principal.user.id)
            .await
            .map_err(gone_is_invalid_token)
    }

    /// One page of the caller's active sessions, most recently used first;
    /// paging as in [`list_api_keys`](Self::list_api_keys).
    pub async fn list_sessions(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<SessionInfo>, AuthError> {
        Ok(self
            .sessions
            .list_active_sessions(
                principal.user.id,
                self.clock.now(),
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
    ) -> Result<(), AuthError> {
        let ended = self
            .sessions
            .revoke_session(session_id, principal.user.id, self.now_seconds())
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
            .sessions
            .purge_dead_sessions(self.clock.now(), self.settings.session_idle_timeout)
            .await?)
    }

    /// Verifies the caller's password again before a sensitive change; a
    /// wrong password is a validation error on `field`.
    async fn reverify_password(
        &self,
        principal: &Principal,
        password: &Password,
        field: &'static str,
    ) -> Result<(), AuthError> {
        let credentials = self
            .users
            .find_credentials(&principal.user.username)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        // Verified like a login (NFKC first, then the form as typed), but
        // never rehashed here: a password change replaces the hash anyway,
        // and an account deletion removes it.
        match self
            .verify_typed_password(password, Some(&credentials.password_hash))
            .await?
        {
            TypedPasswordCheck::Match { .. } => Ok(()),
            TypedPasswordCheck::Mismatch => Err(AuthError::Validation(vec![FieldError::new(
                field,
                "is incorrect",
            )])),
        }
    }

    fn issue_access_token(
        &self,
        user: &User,
        session_id: SessionId,
        scopes: ScopeSet,
        now: OffsetDateTime,
    ) -> Result<String, AuthError> {
        self.issuer
            .issue_access_token(&AccessTokenClaims {
                user_id: user.id,
                session_id,
                scopes,
                token_id: crate::session::new_token_id(),
                issued_at: now,
                expires_at: later(now, self.settings.access_token_ttl)?,
            })
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    async fn start_session(
        &self,
        user: &User,
        scopes: ScopeSet,
        client: ClientInfo,
    ) -> Result<TokenGrant, AuthError> {
        let now = self.now_seconds();
        let session_id = SessionId::random();
        let (refresh_token, refresh_token_hash) = self.issuer.new_refresh_token();
        self.sessions
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

    /// Now, truncated to whole seconds: JWT times and stored times are in
    /// seconds, and comparing like with like avoids off-by-a-fraction expiry.
    fn now_seconds(&self) -> OffsetDateTime {
        let now = self.clock.now();
        now.replace_nanosecond(0).unwrap_or(now)
    }
}

/// Parses the optional profile fields of an update (absent: unchanged;
/// `Some(None)` name: cleared), collecting every error into `errors`.
fn parse_profile_changes(
    email: Option<&str>,
    full_name: Option<Option<String>>,
    errors: &mut Vec<FieldError>,
) -> ProfileChanges {
    let email = match email.map(EmailAddress::parse) {
        Some(Ok(email)) => Some(email),
        Some(Err(error)) => {
            errors.push(error);
            None
        }
        None => None,
    };
    let full_name = match full_name {
        Some(Some(name)) => match FullName::parse(&name) {
            Ok(name) => Some(Some(name)),
            Err(error) => {
                errors.push(error);
                None
            }
        },
        Some(None) => Some(None),
        None => None,
    };
    ProfileChanges { email, full_name }
}

/// `now` plus `duration`, or an internal error when that is beyond what a
/// timestamp can hold: a lifetime setting out of range must fail the
/// request cleanly, never panic.
fn later(now: OffsetDateTime, duration: Duration) -> Result<OffsetDateTime, AuthError> {
    time::Duration::try_from(duration)
        .ok()
        .and_then(|duration| now.checked_add(duration))
        .ok_or_else(|| {
            AuthError::Internal("a lifetime is beyond the representable time".to_owned())
        })
}

/// A limiter's refusal as the use-cases report it: whole seconds, at least 1.
fn rate_limited(limited: RateLimited) -> AuthError {
    AuthError::RateLimited {
        // Rounded up to whole seconds, so a client that waits that long is let in.
        retry_after_secs: (limited.retry_after.as_secs()
            + u64::from(limited.retry_after.subsec_nanos() > 0))
        .max(1),
    }
}

/// A page request within the bounds every store is promised.
fn clamp_page(mut page: PageRequest) -> PageRequest {
    page.limit = page.limit.clamp(1, MAX_LISTING_PAGE_SIZE);
    page
}

/// The account vanished between authentication and the change.
fn gone_is_invalid_token(error: StoreError) -> AuthError {
    match error {
        StoreError::NotFound => AuthError::InvalidToken,
        other => other.into(),
    }
}

/// The scopes a grant receives: everything the role allows, narrowed by the
/// request; asking for more than the role allows is `invalid_scope`.
fn grant_scopes(role: Role, requested: Option<ScopeSet>) -> Result<ScopeSet, AuthError> {
    let allowed = role.allowed_scopes();
    match requested {
        None => Ok(allowed),
        Some(requested) if requested.is_empty() => Ok(allowed),
        Some(requested) if requested.is_subset_of(allowed) => Ok(requested),
        Some(_) => Err(AuthError::InvalidScope),
    }
}
