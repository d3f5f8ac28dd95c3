//! The `svok` program: all of it is in the library's `supervise::svok` module.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    common::error::main_exit("svok", supervise::svok::run(&args));
}
