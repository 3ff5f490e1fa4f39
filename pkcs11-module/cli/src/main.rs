//! The `cloudtoken` program: the command line of the library (src/lib.rs).

fn main() -> std::process::ExitCode {
    cloudtoken_cli::main()
}
