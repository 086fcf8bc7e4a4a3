//! TLS client configurations for https / pops / imaps checks (rustls, ring).
//!
//! By default certificates are not verified, like the Perl daemon's
//! `LWP::UserAgent(ssl_opts => { verify_hostname => 0 })`: the handshake
//! signatures are still checked, only the chain and name are not. With
//! `sslverify=yes` the chain is verified against the Mozilla roots (or the
//! `sslcafile=` PEM file) and the name against `virtualhost` (or the real
//! server's address).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Accepts any certificate (but checks handshake signatures).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The configuration that does not verify certificates (shared by all checks).
pub fn insecure() -> Arc<ClientConfig> {
    let p = provider();
    let cfg = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(p)))
        .with_no_client_auth();
    Arc::new(cfg)
}

/// A verifying configuration: Mozilla roots, or the certificates of `cafile`.
pub fn verifying(cafile: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match cafile {
        Some(f) => {
            let certs =
                CertificateDer::pem_file_iter(f).map_err(|e| format!("{}: {e}", f.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("{}: {e}", f.display()))?;
                roots.add(c).map_err(|e| format!("{}: {e}", f.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no certificate found", f.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The name to present (SNI) and verify: `virtualhost` if it is a DNS
/// name, else the server's address (no SNI is sent for addresses).
pub fn server_name(virtualhost: Option<&str>, addr: std::net::IpAddr) -> ServerName<'static> {
    if let Some(h) = virtualhost {
        if let Ok(n) = ServerName::try_from(h.to_string()) {
            return n;
        }
    }
    ServerName::IpAddress(addr.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_build() {
        let c = insecure();
        assert!(c.alpn_protocols.is_empty());
        assert!(verifying(None).is_ok());
        let e = verifying(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        assert!(matches!(
            server_name(Some("www.x.y"), "10.0.0.1".parse().unwrap()),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name(None, "10.0.0.1".parse().unwrap()),
            ServerName::IpAddress(_)
        ));
    }
}
