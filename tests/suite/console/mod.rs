//! The web console, without a browser: sign-in, sessions, CSRF, and what
//! each page shows and does.

mod sign_in;
