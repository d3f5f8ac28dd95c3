//! The `setlock` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "setlock",
        supervise::setlock::run(std::env::args_os().skip(1).collect()),
    )
}
