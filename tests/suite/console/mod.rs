//! The web console. Without a browser (`sign_in`, ...): sessions, CSRF and
//! what each page shows and does. In a real browser (`browser_*`, `harness`):
//! scripts in `tests/browser/` run in Debian's chromium through
//! `hubwright_testkit::browser`; `harness` proves the harness itself on a page
//! of its own.

mod admin;
mod harness;
mod sign_in;
