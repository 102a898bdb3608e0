//! The `scim-server` binary: see [`scim_server::cli`].

fn main() -> std::process::ExitCode {
    scim_server::cli::main()
}
