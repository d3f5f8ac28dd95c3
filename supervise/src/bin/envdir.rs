//! The `envdir` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "envdir",
        supervise::envdir::run(std::env::args_os().skip(1).collect()),
    )
}
