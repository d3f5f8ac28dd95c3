//! The `readproctitle` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "readproctitle",
        supervise::readproctitle::run(std::env::args_os().collect()),
    )
}
