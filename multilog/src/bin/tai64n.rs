fn main() {
    common::error::main_exit("tai64n", multilog::tai64n::run());
}
