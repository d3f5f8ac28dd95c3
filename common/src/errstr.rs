//! djb's wording for errno values (the texts daemontools, ucspi-tcp, djbdns and
//! qmail print after "unable to ...: "), so our messages match the originals'
//! byte for byte instead of using strerror's.

/// The original's text for `errno`.
pub fn text(errno: i32) -> &'static str {
    use libc::*;
    match errno {
        0 => "no error",
        EINTR => "interrupted system call",
        ENOMEM => "out of memory",
        ENOENT => "file does not exist",
        ETXTBSY => "text busy",
        EIO => "input/output error",
        EEXIST => "file already exists",
        ETIMEDOUT => "timed out",
        EINPROGRESS => "operation in progress",
        EAGAIN => "temporary failure",
        EPIPE => "broken pipe",
        EPERM => "permission denied",
        EACCES => "access denied",
        ENXIO => "device not configured",
        EPROTO => "protocol error",
        EISDIR => "is a directory",
        ECONNREFUSED => "connection refused",
        ESRCH => "no such process",
        E2BIG => "argument list too long",
        ENOEXEC => "exec format error",
        EBADF => "file descriptor not open",
        ECHILD => "no child processes",
        EDEADLK => "operation would cause deadlock",
        EFAULT => "bad address",
        ENOTBLK => "not a block device",
        EBUSY => "device busy",
        EXDEV => "cross-device link",
        ENODEV => "device does not support operation",
        ENOTDIR => "not a directory",
        EINVAL => "invalid argument",
        ENFILE => "system cannot open more files",
        EMFILE => "process cannot open more files",
        ENOTTY => "not a tty",
        EFBIG => "file too big",
        ENOSPC => "out of disk space",
        ESPIPE => "unseekable descriptor",
        EROFS => "read-only file system",
        EMLINK => "too many links",
        EDOM => "input out of range",
        ERANGE => "output out of range",
        EALREADY => "operation already in progress",
        ENOTSOCK => "not a socket",
        EDESTADDRREQ => "destination address required",
        EMSGSIZE => "message too long",
        EPROTOTYPE => "incorrect protocol type",
        ENOPROTOOPT => "protocol not available",
        EPROTONOSUPPORT => "protocol not supported",
        ESOCKTNOSUPPORT => "socket type not supported",
        EOPNOTSUPP => "operation not supported",
        EPFNOSUPPORT => "protocol family not supported",
        EAFNOSUPPORT => "address family not supported",
        EADDRINUSE => "address already used",
        EADDRNOTAVAIL => "address not available",
        ENETDOWN => "network down",
        ENETUNREACH => "network unreachable",
        ENETRESET => "network reset",
        ECONNABORTED => "connection aborted",
        ECONNRESET => "connection reset",
        ENOBUFS => "out of buffer space",
        EISCONN => "already connected",
        ENOTCONN => "not connected",
        ESHUTDOWN => "socket shut down",
        ETOOMANYREFS => "too many references",
        ELOOP => "symbolic link loop",
        ENAMETOOLONG => "file name too long",
        EHOSTDOWN => "host down",
        EHOSTUNREACH => "host unreachable",
        ENOTEMPTY => "directory not empty",
        EUSERS => "too many users",
        EDQUOT => "disk quota exceeded",
        ESTALE => "stale NFS file handle",
        EREMOTE => "too many levels of remote in path",
        ENOLCK => "no locks available",
        ENOSYS => "system call not available",
        EIDRM => "identifier removed",
        ENOMSG => "no message of desired type",
        ENOSTR => "not a stream device",
        ETIME => "timer expired",
        ENOSR => "out of stream resources",
        EBADMSG => "bad message type",
        ENOLINK => "link severed",
        EREMOTEIO => "remote I/O error",
        EUCLEAN => "structure needs cleaning",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn common_texts() {
        assert_eq!(super::text(libc::ENOENT), "file does not exist");
        assert_eq!(super::text(libc::EACCES), "access denied");
        assert_eq!(super::text(libc::ENXIO), "device not configured");
    }
}
