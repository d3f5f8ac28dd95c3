//! qmail-qmqpc: see qmail::qmqpc.
fn main() {
    common::error::main_exit("qmail-qmqpc", qmail::qmqpc::run());
}
