//! A run as people follow it: its events as they happen, and its steps.

use std::time::Duration;

use hubwright_state::Store;
use hubwright_state::model::{Event, Run, Step};
use uuid::Uuid;

/// Prints a run's events as they happen until it reaches a terminal state or
/// stops for an operator, and returns the run as it ended.
pub async fn follow(store: &Store, run_id: Uuid) -> anyhow::Result<Run> {
    let steps = store.steps(run_id).await?;
    let mut last = 0;
    loop {
        // Read the state before the events, so the events of the final
        // transition are printed before we stop.
        let run = store.run(run_id).await?;
        for event in store.events(run_id, last, 500).await? {
            last = event.id;
            crate::output::emitln!("{}", event_line(&event, &steps));
        }
        if run.state.is_terminal() {
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `12:00:01.130  step 2/5 reserve   step reserve succeeded`
pub fn event_line(event: &Event, steps: &[Step]) -> String {
    let label = match event.step_idx {
        Some(idx) => {
            let name = steps
                .iter()
                .find(|s| s.idx == idx)
                .map_or("?", |s| s.name.as_str());
            format!("step {}/{} {name}", idx + 1, steps.len())
        }
        None => "run".to_owned(),
    };
    format!(
        "{}  {label:<28}  {}",
        event.at.format("%H:%M:%S%.3f"),
        event.message
    )
}

/// A run and its steps as a small table.
pub fn run_summary(run: &Run, steps: &[Step]) -> String {
    let mut out = format!(
        "run {}  {}/{}  {}\n",
        run.id, run.template, run.workflow, run.state
    );
    if let Some(error) = &run.error {
        out.push_str(&format!("  error: {}\n", error.message));
    }
    for step in steps {
        let marker = if step.idx == run.current_step && !run.state.is_terminal() {
            "→"
        } else {
            " "
        };
        out.push_str(&format!(
            "{marker} {:>2}. {:<24} {:<10} attempts {}{}\n",
            step.idx + 1,
            step.name,
            step.state.to_string(),
            step.attempts,
            step.error
                .as_ref()
                .map(|e| format!("  last error: {}", e.message))
                .unwrap_or_default()
        ));
    }
    out
}
