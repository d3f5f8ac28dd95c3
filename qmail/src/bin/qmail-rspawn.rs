fn main() {
    common::error::main_exit("qmail-rspawn", qmail::rspawn::run())
}
