//! The audit trail: who did what to which thing, when, from where, and how it
//! ended. Rows are written once ([`Store::record_audit`]), read newest first
//! with filters ([`Store::list_audit`]) and deleted past the retention
//! ([`Store::prune_audit`]); nothing updates them.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit_insert::insert_audit;
use crate::model::Role;
use crate::{Error, Result, Store};

/// How the actor of an audited action proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// One of hubwright's own bearer tokens.
    Token,
    /// A JWT of the organisation's OpenID provider.
    Oidc,
    /// A command that writes straight to the database (`hubwright admin
    /// token`); the actor is the operating-system user that ran it.
    Database,
    /// hubwright itself (e.g. a policy reload on a signal).
    System,
    /// Nobody could be authenticated (the answer was 401); stored as `none`.
    #[serde(rename = "none")]
    Unauthenticated,
}

impl AuthKind {
    /// The name stored and shown: `token`, `oidc`, `database`, `system`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Oidc => "oidc",
            Self::Database => "database",
            Self::System => "system",
            Self::Unauthenticated => "none",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "token" => Self::Token,
            "oidc" => Self::Oidc,
            "database" => Self::Database,
            "system" => Self::System,
            _ => Self::Unauthenticated,
        }
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was done (a 2xx answer).
    Success,
    /// It was refused or failed (any other answer).
    Failure,
}

impl Outcome {
    /// `success` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    /// `success` or `failure`; the error is the rule, for a 422.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            other => Err(format!("must be `success` or `failure` (got `{other}`)")),
        }
    }
}

/// Which way an audited API call came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// An HTTP client of the API: the CLI, a portal, a script.
    Api,
    /// The web console, for the user signed in to it.
    Console,
}

impl Channel {
    /// `api` or `console`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Console => "console",
        }
    }

    /// `api` or `console`; the error is the rule, for a 422.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "api" => Ok(Self::Api),
            "console" => Ok(Self::Console),
            other => Err(format!("must be `api` or `console` (got `{other}`)")),
        }
    }
}

/// One action to record. Only `at`, `auth`, `action` and `outcome` are
/// required; the rest is what is known.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// When it happened (the injected clock).
    pub at: DateTime<Utc>,
    /// Who: a subject; `None` when nobody could be authenticated.
    pub actor: Option<String>,
    /// Their role, when they had one.
    pub actor_role: Option<Role>,
    /// How they proved who they are.
    pub auth: AuthKind,
    /// What, as `thing.verb`: `environment.create`, `token.revoke`, ...
    pub action: String,
    /// The kind of thing acted on: `environment`, `run`, `token`, ...
    pub target_kind: Option<String>,
    /// Its id (or the name the caller gave, when no id is known).
    pub target_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The HTTP status answered, for API calls.
    pub status: Option<u16>,
    /// The problem document's `type`, for refusals.
    pub problem_type: Option<String>,
    /// A short human note: a refusal's `detail`, what a reload changed.
    pub detail: Option<String>,
    /// From where: the client's address.
    pub client_addr: Option<IpAddr>,
    /// The HTTP method, for API calls.
    pub method: Option<String>,
    /// The request path (without the query), for API calls.
    pub path: Option<String>,
    /// Which way an API call came in; `None` outside the API.
    pub channel: Option<Channel>,
}

impl AuditRecord {
    /// A record of `action` by `actor` (authenticated by `auth`) at `at`,
    /// with nothing else known yet.
    pub fn new(
        at: DateTime<Utc>,
        actor: Option<&str>,
        auth: AuthKind,
        action: &str,
        outcome: Outcome,
    ) -> Self {
        Self {
            at,
            actor: actor.map(str::to_owned),
            actor_role: None,
            auth,
            action: action.to_owned(),
            target_kind: None,
            target_id: None,
            outcome,
            status: None,
            problem_type: None,
            detail: None,
            client_addr: None,
            method: None,
            path: None,
            channel: None,
        }
    }

    /// The same record about `kind` `id`.
    pub fn target(mut self, kind: &str, id: impl ToString) -> Self {
        self.target_kind = Some(kind.to_owned());
        self.target_id = Some(id.to_string());
        self
    }
}

/// One row of the audit trail, as `GET /v1/audit` and the export show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Its position in the trail: later entries have larger ids.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who; null when nobody could be authenticated.
    pub actor: Option<String>,
    /// Their role.
    pub actor_role: Option<Role>,
    /// How they proved who they are.
    pub auth: AuthKind,
    /// What, e.g. `environment.create`.
    pub action: String,
    /// The kind of thing acted on, e.g. `environment`.
    pub target_kind: Option<String>,
    /// Its id, or the name the caller gave when no id was known.
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: Outcome,
    /// The HTTP status answered; null outside the API.
    pub status: Option<u16>,
    /// For refusals: the problem document's `type`.
    pub problem_type: Option<String>,
    /// For refusals: the problem's `detail`; otherwise a note, if any.
    pub detail: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// The HTTP method.
    pub method: Option<String>,
    /// The request path.
    pub path: Option<String>,
    /// `api` or `console`: which way an API call came in; null outside the
    /// API and for entries written before hubwright told the two apart.
    pub channel: Option<Channel>,
}

/// Which entries to list. Every field narrows; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor's.
    pub actor: Option<String>,
    /// Only this action, e.g. `environment.create`.
    pub action: Option<String>,
    /// Only about this target id (or name).
    pub target: Option<String>,
    /// Only successes or only failures.
    pub outcome: Option<Outcome>,
    /// Only API calls that came in this way.
    pub channel: Option<Channel>,
    /// Only at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only before this time.
    pub until: Option<DateTime<Utc>>,
}

struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: Option<String>,
    actor_role: Option<Role>,
    auth: String,
    action: String,
    target_kind: Option<String>,
    target_id: Option<String>,
    outcome: String,
    status: Option<i16>,
    problem_type: Option<String>,
    detail: Option<String>,
    client_addr: Option<String>,
    method: Option<String>,
    path: Option<String>,
    channel: Option<String>,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> Self {
        Self {
            id: row.id,
            at: row.at,
            actor: row.actor,
            actor_role: row.actor_role,
            auth: AuthKind::parse(&row.auth),
            action: row.action,
            target_kind: row.target_kind,
            target_id: row.target_id,
            outcome: Outcome::parse(&row.outcome).unwrap_or(Outcome::Failure),
            status: row.status.and_then(|s| u16::try_from(s).ok()),
            problem_type: row.problem_type,
            detail: row.detail,
            client_addr: row.client_addr,
            method: row.method,
            path: row.path,
            channel: row.channel.as_deref().and_then(|c| Channel::parse(c).ok()),
        }
    }
}

impl Store {
    /// Records one action. A creation (`*.create`) is recorded once per
    /// target: recording its success again (an idempotent replay) does
    /// nothing. Callers that must not fail because of the audit (the API)
    /// log and count an error instead of returning it.
    pub async fn record_audit(&self, record: &AuditRecord) -> Result<()> {
        insert_audit(&self.pool, record).await
    }

    /// A page of entries, newest first, before entry `before` (the last id of
    /// the previous page).
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        if limit < 1 {
            return Err(Error::Invalid {
                field: "limit".to_owned(),
                rule: "must be at least 1".to_owned(),
            });
        }
        let mut tx = self.pool.begin().await?;
        // As in `list_runs`: planned with the actual values, so the index of
        // the one filter used is used.
        sqlx::query_scalar!("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query_as!(
            AuditRow,
            r#"
            SELECT id, at, actor, actor_role AS "actor_role: Role", auth, action, target_kind,
                   target_id, outcome, status, problem_type, detail,
                   host(client_addr) AS client_addr, method, path, channel
            FROM audit_log
            WHERE ($1::text IS NULL OR actor = $1)
              AND ($2::text IS NULL OR action = $2)
              AND ($3::text IS NULL OR target_id = $3)
              AND ($4::text IS NULL OR outcome = $4)
              AND ($5::timestamptz IS NULL OR at >= $5)
              AND ($6::timestamptz IS NULL OR at < $6)
              AND ($7::bigint IS NULL OR id < $7)
              AND ($9::text IS NULL OR channel = $9)
            ORDER BY id DESC
            LIMIT $8
            "#,
            filter.actor,
            filter.action,
            filter.target,
            filter.outcome.map(Outcome::as_str),
            filter.since,
            filter.until,
            before,
            limit,
            filter.channel.map(Channel::as_str),
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// Deletes at most `batch` entries older than `before`, oldest first;
    /// returns how many. Callers repeat until fewer than `batch` go, so no
    /// one statement holds many locks or a long transaction.
    pub async fn prune_audit(&self, before: DateTime<Utc>, batch: i64) -> Result<u64> {
        let deleted = sqlx::query!(
            r#"DELETE FROM audit_log
               WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)"#,
            before,
            batch,
        )
        .execute(&self.pool)
        .await?;
        Ok(deleted.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse_only_their_names() {
        assert_eq!(Outcome::parse("success"), Ok(Outcome::Success));
        assert_eq!(Outcome::parse("failure"), Ok(Outcome::Failure));
        assert!(Outcome::parse("ok").unwrap_err().contains("`ok`"));
    }
}
