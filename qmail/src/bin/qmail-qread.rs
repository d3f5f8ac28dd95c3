fn main() {
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let r = qmail::qstat::qread(&mut out);
    let _ = std::io::Write::flush(&mut out);
    common::error::main_exit("qmail-qread", r)
}
