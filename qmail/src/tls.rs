//! TLS for the servers' connection (STARTTLS in qmail-smtpd), with rustls:
//! the certificate chain and private key come from control/servercert.pem
//! as in the widely used qmail TLS patch (both in one PEM file), and the
//! encrypted bytes travel on the same fds 0 and 1 tcpserver gave us.
//!
//! rustls is driven by hand (no threads, no async): raw reads from fd 0
//! are fed in, records it wants to send are written to fd 1.

use common::Error;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::sync::Arc;

/// The control file holding the server's key and certificate chain.
pub const SERVERCERT: &str = "servercert.pem";

/// Whether TLS can be offered: control/servercert.pem exists.
pub fn available() -> bool {
    crate::control::file(SERVERCERT).exists()
}

/// The server configuration from control/servercert.pem.
pub fn config() -> Result<Arc<rustls::ServerConfig>, Error> {
    let path = crate::control::file(SERVERCERT);
    let bad = || Error::temp("TLS missing certificate");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
        .map_err(|_| bad())?
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let key = PrivateKeyDer::from_pem_file(&path).map_err(|_| bad())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| bad())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|_| bad())?;
    Ok(Arc::new(cfg))
}

/// A raw fd as Read or Write for rustls.
struct Fd(i32);

impl Read for Fd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        nix::unistd::read(self.0, buf).map_err(std::io::Error::from)
    }
}

impl Write for Fd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) };
        nix::unistd::write(fd, buf).map_err(std::io::Error::from)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One TLS session over fds 0 and 1.
pub struct Session {
    conn: rustls::ServerConnection,
}

/// What a read of the network brought.
pub enum Input {
    /// Plaintext bytes were copied.
    Data(usize),
    /// Only TLS records, nothing for the application yet.
    Nothing,
    /// The peer closed or the TLS session failed.
    Closed,
}

impl Session {
    pub fn new(cfg: Arc<rustls::ServerConfig>) -> Result<Session, Error> {
        let conn =
            rustls::ServerConnection::new(cfg).map_err(|_| Error::temp("TLS init failed"))?;
        Ok(Session { conn })
    }

    /// Plaintext already decrypted, without touching the network.
    pub fn buffered(&mut self, buf: &mut [u8]) -> usize {
        self.conn.reader().read(buf).unwrap_or(0)
    }

    /// Read from fd 0 (it is readable) and decrypt into `buf`.
    pub fn read_network(&mut self, buf: &mut [u8]) -> Input {
        match self.conn.read_tls(&mut Fd(0)) {
            Ok(0) => return Input::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Input::Nothing,
            Err(_) => return Input::Closed,
        }
        if self.conn.process_new_packets().is_err() {
            // Tell the peer why, if it listens; then give up.
            let _ = self.conn.write_tls(&mut Fd(1));
            return Input::Closed;
        }
        match self.conn.reader().read(buf) {
            Ok(n) if n > 0 => Input::Data(n),
            Ok(_) => Input::Closed,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Input::Nothing,
            Err(_) => Input::Closed,
        }
    }

    /// Queue plaintext for sending.
    pub fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.conn.writer().write_all(data)
    }

    /// Whether records wait to be written to fd 1.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Write some pending records to fd 1 (it is writable).
    pub fn write_network(&mut self) -> std::io::Result<usize> {
        self.conn.write_tls(&mut Fd(1))
    }

    /// The negotiated cipher suite, for the Received line.
    pub fn cipher(&self) -> String {
        self.conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default()
    }
}
