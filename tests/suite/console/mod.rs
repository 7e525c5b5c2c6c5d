//! The web console in a real browser: scripts in `tests/browser/` run in
//! Debian's chromium through `hubwright_testkit::browser`. `harness` proves the
//! harness itself on a page of its own.

mod harness;
