//! qmail-smtpd: see qmail::smtpd.
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    common::error::main_exit("qmail-smtpd", qmail::smtpd::run(&args));
}
