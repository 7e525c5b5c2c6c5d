//! Environments by name: a name is unique per owner among live environments
//! (the partial unique index `environments_owner_name_live`), so an owner and
//! a name find at most one.

use crate::model::{Environment, EnvironmentPhase};
use crate::{Result, Store};

impl Store {
    /// `owner`'s live (not deleted) environment called `name`, if any.
    pub async fn live_environment_by_name(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<Option<Environment>> {
        // The predicate repeats the index's, so the lookup is an index scan.
        Ok(sqlx::query_as!(
            Environment,
            r#"
            SELECT id, name, owner, template, parameters, cluster, namespace,
                   phase AS "phase: EnvironmentPhase", url, expires_at, last_error,
                   created_at, updated_at
            FROM environments WHERE owner = $1 AND name = $2 AND phase <> 'deleted'
            "#,
            owner,
            name
        )
        .fetch_optional(&self.pool)
        .await?)
    }
}
