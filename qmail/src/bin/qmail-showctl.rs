fn main() {
    common::error::main_exit("qmail-showctl", qmail::showctl::run())
}
