//! The columns of each thing the CLI lists, and an environment as people read it.

use hubwright_state::model::{Condition, Environment, Run};
use hubwright_state::store::tokens::TokenInfo;

use super::{Listing, when};

impl Listing for Environment {
    const HEADERS: &'static [&'static str] =
        &["NAME", "OWNER", "TEMPLATE", "PHASE", "EXPIRES", "URL"];
    const WIDE_HEADERS: &'static [&'static str] = &["ID", "CLUSTER", "NAMESPACE", "CREATED"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.owner.clone(),
            self.template.clone(),
            self.phase.to_string(),
            when(Some(self.expires_at)),
            self.url.clone().unwrap_or_else(|| "-".to_owned()),
        ]
    }

    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.cluster.clone(),
            self.namespace.clone().unwrap_or_else(|| "-".to_owned()),
            when(Some(self.created_at)),
        ]
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

impl Listing for Run {
    const HEADERS: &'static [&'static str] =
        &["ID", "TEMPLATE", "KIND", "STATE", "STEP", "CREATED", "BY"];
    const WIDE_HEADERS: &'static [&'static str] = &["ENVIRONMENT", "FINISHED", "ERROR"];

    fn cells(&self) -> Vec<String> {
        // The step a run is at, 1-based as people count; a finished run shows its last.
        let at = (self.current_step + 1).min(self.step_count);
        vec![
            self.id.to_string(),
            self.template.clone(),
            self.workflow.clone(),
            self.state.to_string(),
            format!("{at}/{}", self.step_count),
            when(Some(self.created_at)),
            self.created_by.clone(),
        ]
    }

    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.environment_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            when(self.finished_at),
            self.error
                .as_ref()
                .map_or_else(|| "-".to_owned(), |e| e.message.clone()),
        ]
    }

    fn name(&self) -> String {
        self.id.to_string()
    }
}

impl Listing for TokenInfo {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "SUBJECT",
        "ROLE",
        "CREATED BY",
        "LAST USED",
        "REVOKED",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.subject.clone(),
            self.role.to_string(),
            self.created_by.clone(),
            when(self.last_used_at),
            when(self.revoked_at),
        ]
    }

    fn name(&self) -> String {
        self.id.to_string()
    }
}

/// One environment's fields, for `env show`.
pub fn environment_summary(env: &Environment) -> String {
    let mut out = format!(
        "environment {}  {}  ({} / {})\n  phase      {}\n  owner      {}\n  expires    {}\n",
        env.name, env.id, env.template, env.cluster, env.phase, env.owner, env.expires_at
    );
    if let Some(namespace) = &env.namespace {
        out.push_str(&format!("  namespace  {namespace}\n"));
    }
    if let Some(url) = &env.url {
        out.push_str(&format!("  url        {url}\n"));
    }
    if let Some(error) = &env.last_error {
        out.push_str(&format!("  error      {error}\n"));
    }
    if !env.conditions.is_empty() {
        out.push_str("  conditions\n");
        let rows: Vec<ConditionRow<'_>> = env.conditions.iter().map(ConditionRow).collect();
        for line in super::table(&rows, false, true).lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

/// One condition as `env show` prints it.
#[derive(serde::Serialize)]
struct ConditionRow<'a>(&'a Condition);

impl Listing for ConditionRow<'_> {
    const HEADERS: &'static [&'static str] = &["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"];

    fn cells(&self) -> Vec<String> {
        let condition = self.0;
        vec![
            condition.kind.clone(),
            format!("{:?}", condition.status),
            format!("{:?}", condition.reason),
            when(Some(condition.last_transition_time)),
            condition.message.clone(),
        ]
    }

    fn name(&self) -> String {
        self.0.kind.clone()
    }
}
