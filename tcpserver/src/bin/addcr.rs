fn main() {
    common::error::main_exit("addcr", tcpserver::tools::addcr());
}
