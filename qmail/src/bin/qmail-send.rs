fn main() {
    common::error::main_exit("qmail-send", qmail::send::run())
}
