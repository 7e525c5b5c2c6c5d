//! The spans a run executes in: one per claim of the run, a child of the
//! request that created it (its stored `traceparent`), and one per step
//! execution inside it. Their fields are what every line a step logs
//! carries: `run_id` and `trace_id` from the run's span, `step`, `kind` and
//! `attempt` from the step's.

use hubwright_state::store::lease::{ClaimedRun, StepClaim};
use hubwright_state::workflow::Snapshot;
use hubwright_telemetry::TraceParent;
use hubwright_telemetry::context::set_parent;
use tracing::field::Empty;

/// The span of one claim of `claimed`: in the trace of the request that
/// created the run when it has one, whichever process made it and however
/// long ago.
pub(super) fn run(claimed: &ClaimedRun) -> tracing::Span {
    let span = tracing::info_span!(
        "run",
        otel.name = "run",
        run_id = %claimed.id,
        token = claimed.token,
        trace_id = Empty,
    );
    let stored = claimed.traceparent.as_deref().and_then(TraceParent::parse);
    if let Some(parent) = &stored {
        set_parent(&span, parent);
    }
    // Without a stored context the span starts a trace of its own, when
    // traces are exported.
    if let Some(context) = stored.or_else(|| TraceParent::of_span(&span)) {
        span.record("trace_id", context.trace_id_hex());
    }
    span
}

/// The span of one execution of `step` of `snapshot`: the step itself and
/// the commit of its outcome.
pub(super) fn step(snapshot: &Snapshot, step: &StepClaim) -> tracing::Span {
    let def = usize::try_from(step.idx)
        .ok()
        .and_then(|i| snapshot.steps.get(i));
    let (name, kind) = def.map_or(("?", "?"), |def| (def.name.as_str(), def.kind.as_str()));
    tracing::info_span!(
        "step",
        otel.name = %format!("step {name}"),
        step = name,
        kind,
        attempt = step.attempts,
        poll = step.is_poll,
    )
}
