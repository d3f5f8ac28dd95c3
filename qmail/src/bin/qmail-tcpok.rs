fn main() {
    common::error::main_exit("qmail-tcpok", qmail::tcpto::clear())
}
