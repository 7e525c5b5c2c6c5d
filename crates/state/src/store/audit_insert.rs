//! Writing audit records: each value cut to its column's limit, and one
//! insert any statement's executor can run, so an action can commit its
//! record with itself.

use chrono::{DateTime, Utc};

use super::audit::AuditRecord;
use crate::Result;
use crate::model::Role;

/// Longest `detail` kept; a refusal's detail can quote the request.
const MAX_DETAIL: usize = 1000;

/// `text` cut to at most `max` characters (the columns' CHECKs).
fn clip(text: Option<&str>, max: usize) -> Option<String> {
    text.map(|t| t.chars().take(max).collect())
}

/// A record's values as the `audit_log` columns take them: texts clipped to
/// the columns' CHECKs, the address as text (the SQL casts it to `inet`).
/// Every insert of a record binds these, whatever statement it is in.
pub(super) struct AuditColumns {
    pub(super) at: DateTime<Utc>,
    pub(super) actor: Option<String>,
    pub(super) actor_role: Option<Role>,
    pub(super) auth: &'static str,
    pub(super) action: Option<String>,
    pub(super) target_kind: Option<String>,
    pub(super) target_id: Option<String>,
    pub(super) outcome: &'static str,
    pub(super) status: Option<i16>,
    pub(super) problem_type: Option<String>,
    pub(super) detail: Option<String>,
    pub(super) client_addr: Option<String>,
    pub(super) method: Option<String>,
    pub(super) path: Option<String>,
    pub(super) channel: Option<&'static str>,
}

impl AuditRecord {
    pub(super) fn columns(&self) -> AuditColumns {
        AuditColumns {
            at: self.at,
            actor: clip(self.actor.as_deref(), 200),
            actor_role: self.actor_role,
            auth: self.auth.as_str(),
            action: clip(Some(&self.action), 100),
            target_kind: clip(self.target_kind.as_deref(), 100),
            target_id: clip(self.target_id.as_deref(), 200),
            outcome: self.outcome.as_str(),
            status: self.status.map(|s| i16::try_from(s).unwrap_or(i16::MAX)),
            problem_type: clip(self.problem_type.as_deref(), 200),
            detail: clip(self.detail.as_deref(), MAX_DETAIL),
            client_addr: self.client_addr.map(|a| a.to_string()),
            method: clip(self.method.as_deref(), 10),
            path: clip(self.path.as_deref(), 1000),
            channel: self.channel.map(super::audit::Channel::as_str),
        }
    }
}

/// Inserts one record on any executor, so an action can commit its record
/// with itself ([`Store::record_audit`] says what a repeat does).
pub(super) async fn insert_audit<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    record: &AuditRecord,
) -> Result<()> {
    let c = record.columns();
    sqlx::query!(
        r#"INSERT INTO audit_log (at, actor, actor_role, auth, action, target_kind,
                   target_id, outcome, status, problem_type, detail, client_addr, method, path,
                   channel)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::inet, $13, $14,
                       $15)
               ON CONFLICT DO NOTHING"#,
        c.at,
        c.actor,
        c.actor_role as Option<Role>,
        c.auth,
        c.action,
        c.target_kind,
        c.target_id,
        c.outcome,
        c.status,
        c.problem_type,
        c.detail,
        c.client_addr,
        c.method,
        c.path,
        c.channel,
    )
    .execute(executor)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_details_are_clipped_by_characters_not_bytes() {
        let long = "é".repeat(MAX_DETAIL + 5);
        assert_eq!(
            clip(Some(&long), MAX_DETAIL).map(|t| t.chars().count()),
            Some(MAX_DETAIL)
        );
    }
}
