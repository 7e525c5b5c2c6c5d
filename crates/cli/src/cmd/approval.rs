//! `hubwright approval ...`: the requests `approval` steps wait on, through
//! the API. Approvers list what waits for them and approve or deny it with a
//! comment; a denial fails the run and tears the environment down.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use hubwright_state::store::approvals::Approval;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::client::{Client, ClientError};
use crate::output::{self, Format, Listing, when};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List approvals: by default the pending ones you may decide or asked for.
    #[command(after_help = "Examples:
  hubwright approval list
  hubwright approval list --state denied -o wide
  hubwright approval list -o name | head -1 | xargs hubwright approval approve --comment ok")]
    List {
        /// Only approvals in this state.
        #[arg(long, value_enum, default_value = "pending")]
        state: StateFilter,
        /// Continue after this page cursor (the last id of the previous page).
        #[arg(long)]
        cursor: Option<Uuid>,
        /// At most this many, 1 to 200.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one approval: who asked, who may decide, its deadline and decision.
    #[command(
        after_help = "Example:\n  hubwright approval show 0193c5c2-6f1e-7b52-9d3e-2a0f4d1e8b77 -o yaml"
    )]
    Show {
        /// The approval's id (`hubwright approval list -o name`).
        id: Uuid,
    },
    /// Approve: the waiting run goes on at once.
    #[command(
        after_help = "Example:\n  hubwright approval approve 0193c5c2-6f1e-7b52-9d3e-2a0f4d1e8b77 --comment \"GPU budget confirmed\""
    )]
    Approve {
        /// The approval's id.
        id: Uuid,
        /// Why; shown on the run's timeline.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny: the run fails and the environment is torn down.
    #[command(
        after_help = "Example:\n  hubwright approval deny 0193c5c2-6f1e-7b52-9d3e-2a0f4d1e8b77 --comment \"use the shared GPU hub instead\""
    )]
    Deny {
        /// The approval's id.
        id: Uuid,
        /// Why; shown in the run's error and on its timeline.
        #[arg(long)]
        comment: Option<String>,
    },
}

/// `--state`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateFilter {
    /// Waiting for a decision.
    Pending,
    /// Approved.
    Approved,
    /// Denied.
    Denied,
    /// Expired without a decision.
    Expired,
    /// Any state.
    All,
}

impl StateFilter {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::All => "all",
        }
    }
}

/// An approval as the API shows it to the caller.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApprovalItem {
    #[serde(flatten)]
    approval: Approval,
    /// Whether the caller may decide it now.
    may_decide: bool,
}

#[derive(Debug, Deserialize)]
struct ApprovalPage {
    items: Vec<ApprovalItem>,
    next_cursor: Option<Uuid>,
}

impl Listing for ApprovalItem {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "REQUESTED BY",
        "APPROVERS",
        "STATE",
        "DEADLINE",
        "YOU MAY DECIDE",
    ];
    const WIDE_HEADERS: &'static [&'static str] =
        &["RUN", "STEP", "ENVIRONMENT", "DECIDED BY", "COMMENT"];

    fn cells(&self) -> Vec<String> {
        let a = &self.approval;
        vec![
            a.id.to_string(),
            a.requested_by.clone(),
            a.approvers.to_string(),
            a.state.to_string(),
            when(Some(a.deadline)),
            if self.may_decide { "yes" } else { "no" }.to_owned(),
        ]
    }

    fn wide_cells(&self) -> Vec<String> {
        let a = &self.approval;
        vec![
            a.run_id.to_string(),
            a.step_name.clone(),
            a.environment_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            a.decided_by.clone().unwrap_or_else(|| "-".to_owned()),
            a.comment.clone().unwrap_or_else(|| "-".to_owned()),
        ]
    }

    fn name(&self) -> String {
        self.approval.id.to_string()
    }
}

/// One approval as people read it.
fn summary(item: &ApprovalItem) -> String {
    let a = &item.approval;
    let mut out = format!(
        "approval {}  ({})\n  requested by  {}\n  approvers     {}\n  run           {} (step {})\n  deadline      {}\n",
        a.id, a.state, a.requested_by, a.approvers, a.run_id, a.step_name, a.deadline
    );
    if let Some(by) = &a.decided_by {
        out.push_str(&format!("  decided by    {by}\n"));
    }
    if let Some(comment) = &a.comment {
        out.push_str(&format!("  comment       {comment}\n"));
    }
    if a.state == hubwright_state::store::approvals::ApprovalState::Pending {
        let may = if item.may_decide { "yes" } else { "no" };
        out.push_str(&format!("  you may decide {may}\n"));
    }
    out
}

pub async fn run(
    client: &Client,
    format: Format,
    command: Command,
) -> Result<ExitCode, ClientError> {
    match command {
        Command::List {
            state,
            cursor,
            limit,
        } => {
            let mut path = format!("/v1/approvals?state={}&limit={limit}", state.as_str());
            if let Some(cursor) = cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page: ApprovalPage = client.get(&path).await?;
            output::print_list(format, &page.items);
            if let Some(next) = page.next_cursor {
                eprintln!("more: --cursor {next}");
            }
        }
        Command::Show { id } => {
            let item: ApprovalItem = client.get(&format!("/v1/approvals/{id}")).await?;
            output::print_one(format, &item, &id.to_string(), || summary(&item));
        }
        Command::Approve { id, comment } => decide(client, format, id, "approve", comment).await?,
        Command::Deny { id, comment } => decide(client, format, id, "deny", comment).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(
    client: &Client,
    format: Format,
    id: Uuid,
    verb: &str,
    comment: Option<String>,
) -> Result<(), ClientError> {
    let item: ApprovalItem = client
        .post(
            &format!("/v1/approvals/{id}/{verb}"),
            &json!({ "comment": comment }),
            None,
        )
        .await?;
    output::print_one(format, &item, &id.to_string(), || {
        format!(
            "approval {} {} by {}\n",
            item.approval.id,
            item.approval.state,
            item.approval.decided_by.as_deref().unwrap_or("-")
        )
    });
    Ok(())
}
