//! The `svstat` program: all of it is in the library's `supervise::svstat` module.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    common::error::main_exit("svstat", supervise::svstat::run(&args));
}
