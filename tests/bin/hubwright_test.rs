//! `hubwright-test`: the `hubwright` program as the suite starts it — every
//! command and flag of the release binary, plus the testkit's step kinds
//! (`test-block`, `test-flaky`, …) and crash points armed by
//! `HUBWRIGHT_TESTKIT_CRASH`.

fn main() -> std::process::ExitCode {
    hubwright_cli::main_with(hubwright_testkit::extensions())
}
