//! The `envuidgid` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "envuidgid",
        supervise::envuidgid::run(std::env::args_os().skip(1).collect()),
    )
}
