//! The `svscan` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "svscan",
        supervise::svscan::run(std::env::args_os().skip(1).collect()),
    )
}
