//! `hubwright`: the release build of the command line.

fn main() -> std::process::ExitCode {
    hubwright_cli::main_with(hubwright_cli::Extensions::default())
}
