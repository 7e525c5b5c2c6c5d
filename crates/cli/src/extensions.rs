//! What one build of the binary adds to another: nothing in a release build;
//! the test build registers the testkit's step kinds and arms crash points.

use hubwright_worker::Registry;

/// Hooks a build of the binary passes to [`crate::main_with`].
#[derive(Debug, Clone, Copy)]
pub struct Extensions {
    /// Registers step kinds beside the built-in ones.
    pub register_steps: fn(&mut Registry),
    /// Called by name between one committed effect and the next (e.g.
    /// `after-enqueue-commit`): the test build dies there when a test asks,
    /// to prove that what was committed survives.
    pub crash_point: fn(&str),
}

impl Default for Extensions {
    fn default() -> Self {
        Self {
            register_steps: |_| {},
            crash_point: |_| {},
        }
    }
}
