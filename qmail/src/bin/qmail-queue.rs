fn main() {
    common::error::main_exit("qmail-queue", qmail::qmail_queue::run())
}
