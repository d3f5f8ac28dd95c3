//! qmail-qmtpd: see qmail::qmtpd.
fn main() {
    common::error::main_exit("qmail-qmtpd", qmail::qmtpd::run());
}
