fn main() {
    common::error::main_exit("qmail-newu", qmail::newu::run());
}
