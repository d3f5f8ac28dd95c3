//! The `setuidgid` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "setuidgid",
        supervise::setuidgid::run(std::env::args_os().skip(1).collect()),
    )
}
