//! Environments by name: a name is unique per owner among live environments
//! (the partial unique index `environments_owner_name_live`), so an owner and
//! a name find at most one.

use crate::model::Environment;
use crate::{Result, Store};

impl Store {
    /// `owner`'s live (not deleted) environment called `name`, if any.
    pub async fn live_environment_by_name(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<Option<Environment>> {
        // The predicate repeats the index's, so the lookup is an index scan;
        // the environment itself is read as every read does, with its
        // conditions.
        let id = sqlx::query_scalar!(
            "SELECT id FROM environments WHERE owner = $1 AND name = $2 AND phase <> 'deleted'",
            owner,
            name
        )
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => super::environment_reads::fetch_environment(&self.pool, id).await,
            None => Ok(None),
        }
    }
}
