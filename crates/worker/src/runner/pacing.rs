//! When the claim loop claims.
//!
//! A busy worker gathers free slots for a moment so that one claim statement
//! (and its commit) fills several: it claims once as many slots are free as
//! one claim takes (every slot, up to `--claim-batch`), or once a free slot has waited
//! [`CLAIM_GATHER`], whichever comes first. An idle worker claims at once.
//! After a claim that found fewer runs than it asked for, nothing more is
//! due: the loop claims again when told of new work, when a run's task ends
//! (its commit may have scheduled a retry) or when the next run falls due,
//! not every time a slot frees.
//!
//! Measured with `hubwright bench w1` (16 slots, docs/benchmarks-notes.md):
//! with a quarter of the slots as the threshold, no bound on the gathering
//! and slots counted free only once their run's task had ended, 7,500 runs/s;
//! counted free as soon as a run gives its slot back, a quarter 7,900, half
//! 9,250, three quarters 9,770, all 9,940. The bound matters more than the
//! figure: without it, a worker whose other slots held long steps left its
//! last few slots empty however many runs were due.

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
    batch: usize,
    /// Free slots that make a busy worker claim without gathering longer.
    threshold: usize,
    /// Since when a free slot has waited for company.
    gathering_since: Option<Instant>,
    /// Nothing was due at the last claim: no claim before this, unless woken.
    quiet_until: Option<Instant>,
}

impl Pacing {
    pub(super) fn new(concurrency: usize, claim_batch: usize) -> Self {
        Self {
            batch: claim_batch,
            threshold: claim_batch.min(concurrency),
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
        if free >= self.threshold || gathered >= CLAIM_GATHER {
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

    /// New work may be due: a notification, or a run's task ended (its
    /// last commit may have scheduled a retry or a poll).
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
    fn a_busy_worker_claims_at_once_when_one_claim_can_fill_no_more_slots() {
        let now = Instant::now();
        let mut few_slots = Pacing::new(16, 32);
        assert!(matches!(few_slots.next(15, now, POLL), Next::Wait(_)));
        let mut many_slots = Pacing::new(100, 32);
        assert!(matches!(many_slots.next(31, now, POLL), Next::Wait(_)));
        assert_eq!(many_slots.next(32, now, POLL), Next::Claim(32));
        assert_eq!(many_slots.next(60, now, POLL), Next::Claim(32));
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
