//! checkpassword: see qmail::checkpassword.
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    common::error::main_exit("checkpassword", qmail::checkpassword::run(&args));
}
