fn main() {
    common::error::main_exit("tai64nlocal", multilog::tai64nlocal::run());
}
