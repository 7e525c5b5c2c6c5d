//! When the claim loop claims.
//!
//! A busy worker gathers free slots for a moment so that one claim statement
//! (and its commit) fills several: it claims once half its slots are free, or
//! once a free slot has waited [`CLAIM_GATHER`], whichever comes first. An
//! idle worker claims at once. After a claim that found fewer runs than it
//! asked for, nothing more is due: the loop claims again when told of new
//! work or when the next run falls due, not every time a slot frees.
//!
//! Measured with `hubwright bench w1` (16 slots, docs/benchmarks-notes.md):
//! a quarter of the slots as the threshold, with no bound on the gathering
//! and slots counted free only once their run's task had ended, drained
//! 7,500 runs/s; half, counted as soon as a run gives its slot back, 9,400.
//! The bound matters more than the figure: without it, a worker whose other
//! slots held long steps left its last few slots empty however many runs
//! were due.

use std::time::{Duration, Instant};

/// The longest a free slot of a busy worker waits for others to free up.
pub(super) const CLAIM_GATHER: Duration = Duration::from_millis(2);

/// What the claim loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Claim up to this many runs.
    Claim(usize),
    /// Look again after this long (or when woken sooner).
    Wait(Duration),
}

/// The claim loop's pacing state.
#[derive(Debug)]
pub(super) struct Pacing {
    concurrency: usize,
    batch: usize,
    threshold: usize,
    /// Since when a free slot has waited for company.
    gathering_since: Option<Instant>,
    /// Nothing was due at the last claim: no claim before this, unless woken.
    quiet_until: Option<Instant>,
}

impl Pacing {
    pub(super) fn new(concurrency: usize, claim_batch: usize) -> Self {
        Self {
            concurrency,
            batch: claim_batch,
            threshold: claim_batch.min(concurrency).div_ceil(2),
            gathering_since: None,
            quiet_until: None,
        }
    }

    /// What to do with `free` slots at `now`; `poll` is the longest wait.
    pub(super) fn next(&mut self, free: usize, now: Instant, poll: Duration) -> Next {
        if free == 0 {
            self.gathering_since = None;
            return Next::Wait(poll);
        }
        if let Some(until) = self.quiet_until {
            if until > now {
                return Next::Wait(until - now);
            }
            self.quiet_until = None;
        }
        let gathered = now.saturating_duration_since(*self.gathering_since.get_or_insert(now));
        let idle = free >= self.concurrency;
        if idle || free >= self.threshold || gathered >= CLAIM_GATHER {
            self.gathering_since = None;
            return Next::Claim(free.min(self.batch));
        }
        Next::Wait(CLAIM_GATHER - gathered)
    }

    /// A claim found fewer runs than it asked for (or failed): wait
    /// `quiet_for` before claiming again, unless [`Pacing::woken`].
    pub(super) fn nothing_due(&mut self, now: Instant, quiet_for: Duration) {
        self.quiet_until = Some(now + quiet_for);
    }

    /// New work may be due (a notification).
    pub(super) fn woken(&mut self) {
        self.quiet_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(1);

    #[test]
    fn an_idle_worker_claims_every_slot_at_once() {
        let mut pacing = Pacing::new(16, 32);
        assert_eq!(pacing.next(16, Instant::now(), POLL), Next::Claim(16));
        let mut small_batches = Pacing::new(16, 4);
        assert_eq!(small_batches.next(16, Instant::now(), POLL), Next::Claim(4));
    }

    #[test]
    fn a_busy_worker_claims_once_half_its_slots_are_free() {
        let mut pacing = Pacing::new(16, 32);
        let now = Instant::now();
        assert!(matches!(pacing.next(7, now, POLL), Next::Wait(_)));
        assert_eq!(pacing.next(8, now, POLL), Next::Claim(8));
    }

    #[test]
    fn a_free_slot_waits_for_company_no_longer_than_the_gathering_bound() {
        let mut pacing = Pacing::new(16, 32);
        let start = Instant::now();
        assert_eq!(pacing.next(1, start, POLL), Next::Wait(CLAIM_GATHER));
        let half_way = start + CLAIM_GATHER / 2;
        assert_eq!(pacing.next(2, half_way, POLL), Next::Wait(CLAIM_GATHER / 2));
        assert_eq!(pacing.next(2, start + CLAIM_GATHER, POLL), Next::Claim(2));
        // The next slot to free up gathers afresh.
        let later = start + 10 * CLAIM_GATHER;
        assert_eq!(pacing.next(1, later, POLL), Next::Wait(CLAIM_GATHER));
    }

    #[test]
    fn with_every_slot_taken_it_waits_for_one_to_free_up() {
        let mut pacing = Pacing::new(16, 32);
        let start = Instant::now();
        assert_eq!(pacing.next(1, start, POLL), Next::Wait(CLAIM_GATHER));
        assert_eq!(pacing.next(0, start, POLL), Next::Wait(POLL));
        // A slot freed after all were taken starts its own gathering.
        let later = start + 5 * CLAIM_GATHER;
        assert_eq!(pacing.next(1, later, POLL), Next::Wait(CLAIM_GATHER));
    }

    #[test]
    fn after_nothing_was_due_it_claims_again_when_woken_or_when_the_next_run_is_due() {
        let mut pacing = Pacing::new(16, 32);
        let start = Instant::now();
        let due_in = Duration::from_millis(300);
        pacing.nothing_due(start, due_in);
        assert_eq!(pacing.next(16, start, POLL), Next::Wait(due_in));
        // Slots freeing up bring no new work: still quiet.
        let soon = start + Duration::from_millis(100);
        assert_eq!(
            pacing.next(16, soon, POLL),
            Next::Wait(due_in - Duration::from_millis(100))
        );
        assert_eq!(pacing.next(16, start + due_in, POLL), Next::Claim(16));

        pacing.nothing_due(start, due_in);
        pacing.woken();
        assert_eq!(pacing.next(16, start, POLL), Next::Claim(16));
    }
}
