//! qmail-qmqpd: see qmail::qmqpd.
fn main() {
    common::error::main_exit("qmail-qmqpd", qmail::qmqpd::run());
}
