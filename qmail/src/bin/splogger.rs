fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    common::error::main_exit("splogger", qmail::splogger::run(&args));
}
