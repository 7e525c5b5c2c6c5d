//! API tokens: created once, shown once, stored as a hash.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::digest::{hex, sha256_hex};
use crate::model::{Principal, Role};
use crate::{Error, Result, Store};

/// A token just created. The only time the secret exists outside its holder.
pub struct IssuedToken {
    /// The token's id (for revocation and audit).
    pub id: Uuid,
    /// Who it authenticates.
    pub subject: String,
    /// What it may do.
    pub role: Role,
    /// The bearer secret: print it once, never log it.
    pub secret: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("subject", &self.subject)
            .field("role", &self.role)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Tokens start with this, so secret scanners and humans recognise them.
const PREFIX: &str = "hw_";

/// How stale a token's `last_used_at` may be: it is written at most once
/// per this, not at every request.
pub const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

fn hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// A token as listed and audited: never its secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The token's id.
    pub id: Uuid,
    /// Who it authenticates.
    pub subject: String,
    /// What it may do.
    pub role: Role,
    /// Who created it: an admin's subject, or `bootstrap` for tokens made in
    /// the database.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request, to the minute: it is written
    /// when a request finds it a minute old or more.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; it no longer authenticates.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who creates tokens directly in the database, bypassing the API.
pub const BOOTSTRAP_ACTOR: &str = "bootstrap";

impl Store {
    /// Creates a token for `subject` with `role` directly in the database (the
    /// first admin's token, tests): recorded as made by [`BOOTSTRAP_ACTOR`].
    pub async fn create_token(
        &self,
        subject: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken> {
        self.create_token_as(BOOTSTRAP_ACTOR, subject, role, None, now)
            .await
    }

    /// Creates a token for `subject` with `role` on behalf of `actor`, and
    /// records who did it on the token's timeline. A `key` (the request's
    /// `Idempotency-Key`) that `actor` has used before creates nothing: it is
    /// an [`Error::Conflict`] on `Idempotency-Key` naming the token it made,
    /// whose secret was in that first answer only.
    pub async fn create_token_as(
        &self,
        actor: &str,
        subject: &str,
        role: Role,
        key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken> {
        let subject = subject.trim();
        if let Some(rule) = crate::subjects::subject_rule(subject) {
            return Err(Error::Invalid {
                field: "subject".to_owned(),
                rule,
            });
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|err| Error::Invalid {
            field: "token".to_owned(),
            rule: format!("the system has no randomness to make one: {err}"),
        })?;
        let secret = format!("{PREFIX}{}", hex(&random));
        let id = Uuid::now_v7();
        let created = sqlx::query!(
            r#"WITH token AS (
                   INSERT INTO api_tokens (id, subject, role, token_hash, created_by, created_at, idempotency_key)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (created_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                   RETURNING id
               ), event AS (
                   INSERT INTO events (token_id, kind, actor, message, at)
                   SELECT id, 'token_created', $5, 'token for ' || $2 || ' (' || $3::text || ') created', $6
                   FROM token
               )
               SELECT count(*) AS "created!" FROM token"#,
            id,
            subject,
            role as Role,
            hash(&secret),
            actor,
            now,
            key,
        )
        .fetch_one(&self.pool)
        .await?
        .created;
        if created == 0 {
            return Err(self.token_key_used(actor, key.unwrap_or_default()).await?);
        }
        Ok(IssuedToken {
            id,
            subject: subject.to_owned(),
            role,
            secret,
        })
    }

    /// Why `actor`'s `key` creates no token: the one it created before.
    async fn token_key_used(&self, actor: &str, key: &str) -> Result<Error> {
        let earlier = sqlx::query!(
            r#"SELECT id, subject, role AS "role: Role", created_at FROM api_tokens
               WHERE created_by = $1 AND idempotency_key = $2"#,
            actor,
            key,
        )
        .fetch_optional(&self.pool)
        .await?;
        let rule = match earlier {
            Some(token) => format!(
                "was used at {} to create token {} for {} ({}); its secret was shown in that answer only \
                 (revoke the token and create another if the secret was lost)",
                token.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                token.id,
                token.subject,
                token.role,
            ),
            // Deleted between the insert and this read: nothing to name.
            None => "was used before; send a new key for a new token".to_owned(),
        };
        Ok(Error::Conflict {
            field: "Idempotency-Key".to_owned(),
            rule,
        })
    }

    /// Every token, newest first, without secrets.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        Ok(sqlx::query_as!(
            TokenInfo,
            r#"SELECT id, subject, role AS "role: Role", created_by, created_at,
                      last_used_at, revoked_at
               FROM api_tokens ORDER BY id DESC"#
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The principal a bearer token stands for, if it is a live token.
    pub async fn authenticate(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        if !secret.starts_with(PREFIX) {
            return Ok(None);
        }
        // A read, and a write only when `last_used_at` is older than
        // `LAST_USED_GRANULARITY`: a request that writes nothing commits
        // without flushing the WAL, where an update on every request cost a
        // flush each (docs/benchmarks-notes.md, "API"). Revocation is still
        // seen by the next request: the token row is read every time.
        let row = sqlx::query!(
            r#"WITH live AS (
                   SELECT id, subject, role, last_used_at FROM api_tokens
                   WHERE token_hash = $1 AND revoked_at IS NULL
               ), touched AS (
                   UPDATE api_tokens t SET last_used_at = $2
                   FROM live
                   WHERE t.id = live.id AND t.revoked_at IS NULL
                     AND (live.last_used_at IS NULL OR live.last_used_at <= $3)
               )
               SELECT subject, role AS "role: Role" FROM live"#,
            hash(secret),
            now,
            now - LAST_USED_GRANULARITY,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| Principal {
            subject: row.subject,
            role: row.role,
            // hubwright's own tokens carry no groups; the policy file may
            // declare some for their subject.
            groups: Vec::new(),
        }))
    }

    /// Revokes the token with `id` directly in the database, recorded as done
    /// by [`BOOTSTRAP_ACTOR`].
    pub async fn revoke_token(&self, id: Uuid, now: DateTime<Utc>) -> Result<TokenInfo> {
        self.revoke_token_as(BOOTSTRAP_ACTOR, id, now).await
    }

    /// Revokes the token with `id` on behalf of `actor`: it stops
    /// authenticating at once. Revoking a revoked token is harmless (and not
    /// recorded twice); an unknown id is [`Error::TokenNotFound`].
    pub async fn revoke_token_as(
        &self,
        actor: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<TokenInfo> {
        let row = sqlx::query!(
            r#"WITH target AS (
                   SELECT id, revoked_at IS NULL AS live FROM api_tokens WHERE id = $1 FOR UPDATE
               ), revoked AS (
                   UPDATE api_tokens t SET revoked_at = coalesce(t.revoked_at, $3)
                   FROM target WHERE t.id = target.id
                   RETURNING t.id, t.subject, t.role, t.created_by, t.created_at,
                             t.last_used_at, t.revoked_at
               ), audit AS (
                   INSERT INTO events (token_id, kind, actor, message, at)
                   SELECT id, 'token_revoked', $2, 'token revoked', $3 FROM target WHERE live
               )
               SELECT id AS "id!", subject AS "subject!", role AS "role!: Role",
                      created_by AS "created_by!", created_at AS "created_at!",
                      last_used_at, revoked_at
               FROM revoked"#,
            id,
            actor,
            now,
        )
        .fetch_optional(&self.pool)
        .await?;
        let row = row.ok_or(Error::TokenNotFound(id))?;
        Ok(TokenInfo {
            id: row.id,
            subject: row.subject,
            role: row.role,
            created_by: row.created_by,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}
