//! qmail-popup: see qmail::popup.
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    common::error::main_exit("qmail-popup", qmail::popup::run(&args));
}
