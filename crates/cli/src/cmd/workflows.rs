//! `hubwright workflows check`: the workflow files, and the policy file
//! against them, checked as `serve` would at start-up, so a change is
//! refused in CI instead of at the next rollout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::Extensions;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate every workflow file against this binary's step kinds.
    Check {
        /// The directory of workflow files.
        #[arg(long, env = "HUBWRIGHT_WORKFLOWS", default_value = "workflows")]
        workflows: PathBuf,
        /// Also check this policy file against those templates (limits,
        /// groups, template and profile access), as `serve --policy` would.
        #[arg(long, env = "HUBWRIGHT_POLICY")]
        policy: Option<PathBuf>,
    },
}

pub fn run(command: Command, ext: Extensions) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { workflows, policy } => {
            let catalog = super::registry(ext, &Default::default(), None, &workflows)
                .load_catalog(&workflows)?;
            for name in catalog.names() {
                let Some(loaded) = catalog.template(name) else {
                    continue;
                };
                for (workflow, def) in &loaded.template.workflows {
                    let steps: Vec<&str> = def.steps.iter().map(|s| s.name.as_str()).collect();
                    println!("{name}/{workflow}: {}", steps.join(" → "));
                }
            }
            println!(
                "{} template(s) in {} are valid",
                catalog.names().len(),
                workflows.display()
            );
            if let Some(path) = policy {
                let policy = hubwright_state::policy::Policy::load(&path, &catalog)?;
                println!(
                    "policy {} is valid: {} group(s), {} owner(s) with limits of their own, access rules for {} template(s)",
                    path.display(),
                    policy.groups.len(),
                    policy.owners.len(),
                    policy.templates.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
