//! The `warmstart` command line. All logic lives in the `warmstart_cli` library.

fn main() -> std::process::ExitCode {
    warmstart_cli::main()
}
