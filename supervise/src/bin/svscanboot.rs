//! The `svscanboot` command; its logic is in the library.

fn main() {
    common::error::main_exit(
        "svscanboot",
        supervise::svscanboot::run(std::env::args_os().skip(1).collect()),
    )
}
