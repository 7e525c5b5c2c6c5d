//! API tokens: created once, shown once, stored as a hash.

use chrono::{DateTime, Utc};
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

fn hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

impl Store {
    /// Creates a token for `subject` with `role`.
    pub async fn create_token(
        &self,
        subject: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken> {
        let subject = subject.trim();
        if subject.is_empty() || subject.len() > 200 {
            return Err(Error::Invalid {
                field: "subject".to_owned(),
                rule: "must be 1 to 200 characters".to_owned(),
            });
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|err| Error::Invalid {
            field: "token".to_owned(),
            rule: format!("the system has no randomness to make one: {err}"),
        })?;
        let secret = format!("{PREFIX}{}", hex(&random));
        let id = Uuid::now_v7();
        sqlx::query!(
            r#"INSERT INTO api_tokens (id, subject, role, token_hash, created_at)
               VALUES ($1, $2, $3, $4, $5)"#,
            id,
            subject,
            role as Role,
            hash(&secret),
            now,
        )
        .execute(&self.pool)
        .await?;
        Ok(IssuedToken {
            id,
            subject: subject.to_owned(),
            role,
            secret,
        })
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
        let row = sqlx::query!(
            r#"UPDATE api_tokens SET last_used_at = $2
               WHERE token_hash = $1 AND revoked_at IS NULL
               RETURNING subject, role AS "role: Role""#,
            hash(secret),
            now,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| Principal {
            subject: row.subject,
            role: row.role,
        }))
    }

    /// Revokes the token with `id`: it stops authenticating at once. Revoking a
    /// revoked token is harmless; an unknown id is an error.
    pub async fn revoke_token(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        let found = sqlx::query_scalar!(
            r#"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2)
               WHERE id = $1 RETURNING id"#,
            id,
            now,
        )
        .fetch_optional(&self.pool)
        .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(Error::Invalid {
                field: "id".to_owned(),
                rule: format!("no token {id}"),
            }),
        }
    }
}
