fn main() {
    common::error::main_exit("maildirwatch", qmail::maildirwatch::run());
}
