//! STARTTLS for qmail-remote, with rustls, following the control files of
//! the widely used qmail TLS patch:
//!
//! - `control/tlshosts/HOST.pem`: TLS is required with HOST, and its
//!   certificate must chain to that file and name HOST; a server that does
//!   not offer STARTTLS gets "No TLS achieved while ... exists" (deferral).
//! - `control/tlshosts/exhaustivelist`: only hosts with a .pem there get TLS.
//! - `control/notlshosts/HOST`: never TLS with HOST.
//! - `control/clientcert.pem`: our certificate and key, shown when present.
//!
//! Otherwise TLS is opportunistic: used whenever the server offers it, the
//! certificate unchecked (a passive eavesdropper is defeated; an active one
//! could strip STARTTLS anyway), as the patch does without a .pem.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

/// What to do about TLS with one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    Off,
    Opportunistic,
    /// Required, verified against this CA file.
    Verify(PathBuf),
}

impl Policy {
    /// The policy for `host` from the control files.
    pub fn for_host(host: &str) -> Policy {
        let host = host.to_ascii_lowercase();
        let pem = crate::control::file(&format!("tlshosts/{host}.pem"));
        if pem.exists() {
            return Policy::Verify(pem);
        }
        if crate::control::file("tlshosts/exhaustivelist").exists()
            || crate::control::file(&format!("notlshosts/{host}")).exists()
        {
            return Policy::Off;
        }
        Policy::Opportunistic
    }
}

/// The rustls client configuration for `policy` (not Off), or the text of
/// why it cannot be made.
pub fn config(policy: &Policy) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match policy {
        Policy::Verify(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(pem)
                .map_err(|_| format!("TLS unable to load {}", pem.display()))?;
            for c in certs {
                let c = c.map_err(|_| format!("TLS unable to load {}", pem.display()))?;
                roots
                    .add(c)
                    .map_err(|_| format!("TLS unable to load {}", pem.display()))?;
            }
            builder.with_root_certificates(roots)
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider))),
    };
    let clientcert = crate::control::file("clientcert.pem");
    let cfg = if clientcert.exists() {
        let bad = || "TLS unable to use control/clientcert.pem".to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&clientcert)
            .map_err(|_| bad())?
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let key = PrivateKeyDer::from_pem_file(&clientcert).map_err(|_| bad())?;
        builder
            .with_client_auth_cert(certs, key)
            .map_err(|_| bad())?
    } else {
        builder.with_no_client_auth()
    };
    Ok(Arc::new(cfg))
}

/// The name rustls checks the certificate against (any name will do for
/// an unchecked certificate; an address literal stays an address).
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.to_ascii_lowercase()).ok()
}

/// Opportunistic TLS: any certificate is taken, but the handshake's
/// signatures are still checked with it, so the session key is the peer's.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
