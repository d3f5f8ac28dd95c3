//! qmail-queued: see qmail::queued.
fn main() {
    common::error::main_exit("qmail-queued", qmail::queued::run())
}
