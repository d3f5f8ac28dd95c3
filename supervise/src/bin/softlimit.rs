//! The `softlimit` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "softlimit",
        supervise::softlimit::run(std::env::args_os().skip(1).collect()),
    )
}
