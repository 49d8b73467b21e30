//! Reading and pruning the audit log.

use std::time::Duration;

use time::OffsetDateTime;

use super::{AuthService, Principal, clamp_page};
use crate::account::UserId;
use crate::audit::{AuditContext, AuditEntry, AuditQuery, EVENT_NAMES, USER_VISIBLE_EVENTS};
use crate::error::{AuthError, FieldError};
use crate::listing::{Page, PageRequest};

/// An administrator's audit-log query as submitted (`GET /admin/audit`).
#[derive(Debug, Clone, Default)]
pub struct AuditListRequest {
    /// Only events about or by this account.
    pub user: Option<UserId>,
    /// Only events with this name.
    pub event: Option<String>,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    /// Size and position of the page.
    pub page: PageRequest,
}

impl AuthService {
    /// One page of the audit log, newest first (admin). An event name the
    /// log does not know, or `since` after `until`, is a validation error.
    pub async fn list_audit_events(
        &self,
        request: AuditListRequest,
    ) -> Result<Page<AuditEntry>, AuthError> {
        let mut errors = Vec::new();
        if let Some(event) = &request.event
            && !EVENT_NAMES.contains(&event.as_str())
        {
            errors.push(FieldError::new("event", "is not an audit event name"));
        }
        if let (Some(since), Some(until)) = (request.since, request.until)
            && since > until
        {
            errors.push(FieldError::new("until", "must not be before since"));
        }
        if !errors.is_empty() {
            return Err(AuthError::Validation(errors));
        }
        Ok(self
            .ports
            .store
            .list_audit_events(&AuditQuery {
                user: request.user,
                subject: None,
                events: request.event.into_iter().collect(),
                since: request.since,
                until: request.until,
                page: clamp_page(request.page),
            })
            .await?)
    }

    /// One page of the caller's own security activity, newest first: logins
    /// (and failed or refused attempts on the account), sessions, password,
    /// profile and API-key changes, and what an administrator changed.
    pub async fn list_own_events(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, AuthError> {
        Ok(self
            .ports
            .store
            .list_audit_events(&AuditQuery {
                user: None,
                subject: Some(principal.user.id),
                events: USER_VISIBLE_EVENTS
                    .iter()
                    .map(|&name| name.to_owned())
                    .collect(),
                since: None,
                until: None,
                page: clamp_page(page),
            })
            .await?)
    }

    /// Deletes the events older than `retention` (keeping a sealed
    /// checkpoint, so the rest still verifies); how many. Meant to run
    /// periodically.
    pub async fn prune_audit_log(&self, retention: Duration) -> Result<u64, AuthError> {
        let now = self.now();
        let before = time::Duration::try_from(retention)
            .ok()
            .and_then(|retention| now.checked_sub(retention))
            .ok_or_else(|| AuthError::Internal("the audit retention is out of range".to_owned()))?;
        Ok(self
            .ports
            .store
            .prune_audit_events(before, &AuditContext::system(now))
            .await?)
    }
}
