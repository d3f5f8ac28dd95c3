//! qmail-smtpd: see qmail::smtpd. Under `tcpserver -k` one process serves
//! connection after connection (common::keep).
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut keep = args.first().and_then(|a| common::keep::Keep::from_env(a));
    loop {
        let code = common::error::report("qmail-smtpd", qmail::smtpd::run(&args));
        if !keep.as_mut().is_some_and(|k| k.next(code)) {
            std::process::exit(code);
        }
    }
}
