fn main() {
    let mut a = std::env::args_os();
    let argv0 = a
        .next()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<_> = a.collect();
    common::error::main_exit("sendmail", qmail::sendmail::run(&argv0, &args))
}
