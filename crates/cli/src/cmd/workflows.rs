//! `hubwright workflows check`.

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
    },
}

pub fn run(command: Command, ext: Extensions) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { workflows } => {
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
            Ok(ExitCode::SUCCESS)
        }
    }
}
