fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    common::error::main_exit("argv0", tcpserver::tools::argv0(&args));
}
