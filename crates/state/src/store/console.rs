//! The web console's sessions and the OpenID sign-ins in progress
//! (migration `20261207000001_console_sessions.sql` says what each row keeps).
//!
//! Secrets never reach the database: the cookie's session secret and the
//! sign-in's `state` are stored as SHA-256 hashes. The caller makes the
//! secrets ([`new_secret`]) and keeps them out of logs.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::digest::{hex, sha256_hex};
use crate::model::{Principal, Role};
use crate::{Error, Result, Store};

/// How a console session's user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAuth {
    /// With one of hubwright's own tokens, by its id.
    Token(Uuid),
    /// Through the organisation's OpenID provider.
    Oidc,
}

/// A session to open: who, how, until when.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The user, with their role and the provider's groups.
    pub principal: Principal,
    /// How they signed in.
    pub auth: SessionAuth,
    /// When the session ends at the latest.
    pub expires_at: DateTime<Utc>,
}

/// A live session, as read for a request.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// The hash of the cookie's secret: names the session without being it.
    pub id_hash: String,
    /// The user; a token session's role is its token's.
    pub principal: Principal,
    /// How they signed in.
    pub auth: SessionAuth,
    /// The value every form of this session must carry.
    pub csrf: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// What the callback of an OpenID sign-in needs back.
#[derive(Debug, Clone)]
pub struct PendingSignIn {
    /// The PKCE code verifier.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The console path to go to once signed in.
    pub return_to: String,
}

/// A fresh random secret: 32 bytes as 64 hex digits.
pub fn new_secret() -> Result<String> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|err| Error::Invalid {
        field: "session".to_owned(),
        rule: format!("the system has no randomness to make one: {err}"),
    })?;
    Ok(hex(&random))
}

/// The stored form of a session secret or sign-in state.
pub fn secret_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

impl Store {
    /// Opens a session for `new` and returns its secret (for the cookie).
    /// Sessions and sign-ins that have ended are swept here, a few at a
    /// time, so neither table grows without a background job.
    pub async fn open_console_session(
        &self,
        new: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let secret = new_secret()?;
        let csrf = new_secret()?;
        let (auth, token_id) = match new.auth {
            SessionAuth::Token(id) => ("token", Some(id)),
            SessionAuth::Oidc => ("oidc", None),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            r#"INSERT INTO console_sessions
                   (id_hash, subject, role, groups, auth, token_id, csrf, created_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
            secret_hash(&secret),
            new.principal.subject,
            new.principal.role as Role,
            &new.principal.groups,
            auth,
            token_id,
            csrf,
            now,
            new.expires_at,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            r#"DELETE FROM console_sessions WHERE id_hash IN (
                   SELECT id_hash FROM console_sessions WHERE expires_at <= $1 LIMIT 100)"#,
            now,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            r#"DELETE FROM console_sign_ins WHERE state_hash IN (
                   SELECT state_hash FROM console_sign_ins WHERE expires_at <= $1 LIMIT 100)"#,
            now,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// The live session whose cookie secret is `secret`: not expired, and
    /// for a token session, its token not revoked.
    pub async fn console_session(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>> {
        self.console_session_by_hash(&secret_hash(secret), now)
            .await
    }

    /// [`Store::console_session`] by the secret's hash (event streams keep
    /// the hash, never the secret).
    pub async fn console_session_by_hash(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>> {
        let row = sqlx::query!(
            r#"SELECT s.id_hash, s.subject, COALESCE(t.role, s.role) AS "role!: Role",
                      s.groups, s.token_id, s.csrf, s.expires_at
               FROM console_sessions s
               LEFT JOIN api_tokens t ON t.id = s.token_id
               WHERE s.id_hash = $1 AND s.expires_at > $2
                 AND (s.token_id IS NULL OR t.revoked_at IS NULL)"#,
            id_hash,
            now,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| ConsoleSession {
            id_hash: row.id_hash,
            principal: Principal {
                subject: row.subject,
                role: row.role,
                groups: row.groups,
            },
            auth: row.token_id.map_or(SessionAuth::Oidc, SessionAuth::Token),
            csrf: row.csrf,
            expires_at: row.expires_at,
        }))
    }

    /// Of the session hashes `hashes`, those still live (for event streams,
    /// which end when their session does).
    pub async fn live_console_sessions(
        &self,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar!(
            r#"SELECT s.id_hash AS "id_hash!" FROM console_sessions s
               LEFT JOIN api_tokens t ON t.id = s.token_id
               WHERE s.id_hash = ANY($1) AND s.expires_at > $2
                 AND (s.token_id IS NULL OR t.revoked_at IS NULL)"#,
            hashes,
            now,
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Ends the session whose cookie secret is `secret` (sign-out).
    pub async fn close_console_session(&self, secret: &str) -> Result<()> {
        sqlx::query!(
            "DELETE FROM console_sessions WHERE id_hash = $1",
            secret_hash(secret),
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Remembers an OpenID sign-in under the hash of its `state` until
    /// `expires_at`.
    pub async fn begin_console_sign_in(
        &self,
        state: &str,
        pending: &PendingSignIn,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query!(
            r#"INSERT INTO console_sign_ins (state_hash, verifier, nonce, return_to, expires_at)
               VALUES ($1, $2, $3, $4, $5)"#,
            secret_hash(state),
            pending.verifier,
            pending.nonce,
            pending.return_to,
            expires_at,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the sign-in `state` names, if it is known and not expired; a
    /// state is taken once.
    pub async fn finish_console_sign_in(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingSignIn>> {
        let row = sqlx::query!(
            r#"DELETE FROM console_sign_ins WHERE state_hash = $1
               RETURNING verifier, nonce, return_to, expires_at"#,
            secret_hash(state),
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .filter(|row| row.expires_at > now)
            .map(|row| PendingSignIn {
                verifier: row.verifier,
                nonce: row.nonce,
                return_to: row.return_to,
            }))
    }

    /// The token a bearer secret names and the principal it stands for, if
    /// it is live (the console's token sign-in).
    pub async fn token_for_sign_in(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Uuid, Principal)>> {
        let row = sqlx::query!(
            r#"UPDATE api_tokens SET last_used_at = $2
               WHERE token_hash = $1 AND revoked_at IS NULL
               RETURNING id, subject, role AS "role: Role""#,
            sha256_hex(secret.as_bytes()),
            now,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| {
            let principal = Principal {
                subject: row.subject,
                role: row.role,
                groups: Vec::new(),
            };
            (row.id, principal)
        }))
    }
}
