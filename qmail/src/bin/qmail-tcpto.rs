fn main() {
    common::error::main_exit("qmail-tcpto", qmail::tcpto::show(&mut std::io::stdout()))
}
