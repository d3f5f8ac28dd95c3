fn main() {
    common::error::main_exit("delcr", tcpserver::tools::delcr());
}
