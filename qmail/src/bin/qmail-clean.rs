fn main() {
    common::error::main_exit("qmail-clean", qmail::clean::run())
}
