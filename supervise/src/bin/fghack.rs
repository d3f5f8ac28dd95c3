//! The `fghack` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "fghack",
        supervise::fghack::run(std::env::args_os().skip(1).collect()),
    )
}
