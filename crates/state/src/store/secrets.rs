//! Sealed secrets and identity-provider clients of environments.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Result;
use crate::Store;
use crate::secrets::{OpenError, SealError, Sealed, SecretKeys, SecretString};

/// Reading or writing a secret failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The database failed.
    #[error(transparent)]
    State(#[from] crate::Error),
    /// It could not be sealed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// It could not be opened.
    #[error("secret `{name}` of environment {environment_id} {error}")]
    Open {
        /// The environment.
        environment_id: Uuid,
        /// The secret's name.
        name: String,
        /// Why.
        error: OpenError,
    },
}

impl From<sqlx::Error> for SecretError {
    fn from(err: sqlx::Error) -> Self {
        Self::State(err.into())
    }
}

/// Where a registration of an environment's OAuth client stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "idp_client_state", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum IdpClientState {
    /// A registration was started; its answer may have been lost.
    Registering,
    /// The provider has the client and we have its credentials.
    Registered,
    /// Deleted at the provider.
    Deleted,
}

/// An environment's OAuth client, as recorded (secrets are sealed elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpClient {
    /// `dcr` or `keycloak`.
    pub driver: String,
    /// The name it was registered under.
    pub client_name: String,
    /// Where it stands.
    pub state: IdpClientState,
    /// The provider's id for it, once registered.
    pub client_id: Option<String>,
    /// RFC 7592 management URI (DCR), once registered.
    pub registration_client_uri: Option<String>,
    /// Registrations started, this one included.
    pub registrations_started: i32,
}

/// The place a secret is bound to: its environment and name.
fn place(environment_id: Uuid, name: &str) -> String {
    format!("{environment_id}/{name}")
}

/// Inserts or replaces one sealed secret.
async fn store_sealed<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    environment_id: Uuid,
    name: &str,
    sealed: &Sealed,
    now: DateTime<Utc>,
) -> Result<(), SecretError> {
    sqlx::query!(
        r#"INSERT INTO secrets (environment_id, name, key_id, nonce, ciphertext, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6)
           ON CONFLICT (environment_id, name) DO UPDATE
           SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce,
               ciphertext = EXCLUDED.ciphertext, updated_at = EXCLUDED.updated_at"#,
        environment_id,
        name,
        sealed.key_id,
        sealed.nonce,
        sealed.ciphertext,
        now,
    )
    .execute(executor)
    .await?;
    Ok(())
}

impl Store {
    /// Seals `value` under the current key and stores it as `name` of the
    /// environment, replacing an earlier value.
    pub async fn put_secret(
        &self,
        keys: &SecretKeys,
        environment_id: Uuid,
        name: &str,
        value: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<(), SecretError> {
        let sealed = keys.seal(&place(environment_id, name), value)?;
        store_sealed(&self.pool, environment_id, name, &sealed, now).await
    }

    /// The secret `name` of the environment, opened; None if there is none.
    pub async fn secret(
        &self,
        keys: &SecretKeys,
        environment_id: Uuid,
        name: &str,
    ) -> Result<Option<SecretString>, SecretError> {
        let row = sqlx::query!(
            "SELECT key_id, nonce, ciphertext FROM secrets WHERE environment_id = $1 AND name = $2",
            environment_id,
            name,
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed = Sealed {
            key_id: row.key_id,
            nonce: row.nonce,
            ciphertext: row.ciphertext,
        };
        keys.open(&place(environment_id, name), &sealed)
            .map(Some)
            .map_err(|error| SecretError::Open {
                environment_id,
                name: name.to_owned(),
                error,
            })
    }

    /// Forgets the environment's secrets called `names`.
    pub async fn delete_secrets(&self, environment_id: Uuid, names: &[&str]) -> Result<()> {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        sqlx::query!(
            "DELETE FROM secrets WHERE environment_id = $1 AND name = ANY($2)",
            environment_id,
            &names,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The environment's OAuth client record, if a registration ever started.
    pub async fn idp_client(&self, environment_id: Uuid) -> Result<Option<IdpClient>> {
        Ok(sqlx::query_as!(
            IdpClient,
            r#"SELECT driver, client_name, state AS "state: IdpClientState", client_id,
                      registration_client_uri, registrations_started
               FROM idp_clients WHERE environment_id = $1"#,
            environment_id,
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records, before the provider is called, that a registration starts.
    /// Returns the record as it was before (None for the first).
    pub async fn begin_idp_registration(
        &self,
        environment_id: Uuid,
        driver: &str,
        client_name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdpClient>> {
        let before = self.idp_client(environment_id).await?;
        sqlx::query!(
            r#"INSERT INTO idp_clients (environment_id, driver, client_name, state,
                                        registrations_started, updated_at)
               VALUES ($1, $2, $3, 'registering', 1, $4)
               ON CONFLICT (environment_id) DO UPDATE
               SET driver = EXCLUDED.driver, client_name = EXCLUDED.client_name,
                   state = 'registering', client_id = NULL, registration_client_uri = NULL,
                   registrations_started = idp_clients.registrations_started + 1,
                   updated_at = EXCLUDED.updated_at"#,
            environment_id,
            driver,
            client_name,
            now,
        )
        .execute(&self.pool)
        .await?;
        Ok(before)
    }

    /// Records a registration the provider made, with its sealed credentials,
    /// in one transaction.
    pub async fn record_idp_registration(
        &self,
        keys: &SecretKeys,
        environment_id: Uuid,
        client_id: &str,
        registration_client_uri: Option<&str>,
        secrets: &[(&str, &SecretString)],
        now: DateTime<Utc>,
    ) -> Result<(), SecretError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            r#"UPDATE idp_clients SET state = 'registered', client_id = $2,
                      registration_client_uri = $3, updated_at = $4
               WHERE environment_id = $1"#,
            environment_id,
            client_id,
            registration_client_uri,
            now,
        )
        .execute(&mut *tx)
        .await?;
        for (name, value) in secrets {
            let sealed = keys.seal(&place(environment_id, name), value)?;
            store_sealed(&mut *tx, environment_id, name, &sealed, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records that the environment's client is gone from the provider.
    pub async fn mark_idp_client_deleted(
        &self,
        environment_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query!(
            "UPDATE idp_clients SET state = 'deleted', updated_at = $2 WHERE environment_id = $1",
            environment_id,
            now,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
