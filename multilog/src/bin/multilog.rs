fn main() {
    common::error::main_exit("multilog", multilog::multilog::run());
}
