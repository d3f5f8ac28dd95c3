fn main() {
    let r = qmail::install::instcheck(&mut std::io::stderr());
    common::error::main_exit("instcheck", r)
}
