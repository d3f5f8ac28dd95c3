fn main() {
    common::error::main_exit("dnscache", dnscache::server::run());
}
