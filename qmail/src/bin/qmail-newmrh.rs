//! qmail-newmrh: see qmail::newmrh.
fn main() {
    common::error::main_exit("qmail-newmrh", qmail::newmrh::run());
}
