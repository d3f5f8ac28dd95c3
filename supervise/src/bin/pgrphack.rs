//! The `pgrphack` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "pgrphack",
        supervise::pgrphack::run(std::env::args_os().skip(1).collect()),
    )
}
