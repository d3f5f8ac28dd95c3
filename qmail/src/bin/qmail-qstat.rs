fn main() {
    common::error::main_exit("qmail-qstat", qmail::qstat::qstat(&mut std::io::stdout()))
}
