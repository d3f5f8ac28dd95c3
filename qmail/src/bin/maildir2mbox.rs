fn main() {
    common::error::main_exit("maildir2mbox", qmail::maildir2mbox::run());
}
