//! The web console. Without a browser (`sign_in`, `oidc`, `developer`,
//! `operator`, `admin`, ...): sessions, CSRF and what each page shows and
//! does. In a real browser (`browser_*`, `harness`): scripts in
//! `tests/browser/` run in Debian's chromium through
//! `hubwright_testkit::browser`; `harness` proves the harness itself on a page
//! of its own.

mod admin;
mod browser_admin;
mod browser_developer;
mod browser_operator;
mod browser_setup;
mod browser_sign_in;
mod developer;
mod harness;
mod oidc;
mod operator;
mod operator_queue;
mod screenshots;
mod sign_in;
