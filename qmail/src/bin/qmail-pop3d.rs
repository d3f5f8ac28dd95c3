//! qmail-pop3d: see qmail::pop3d.
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    common::error::main_exit("qmail-pop3d", qmail::pop3d::run(&args));
}
