//! TLS for database connections through rustls, honouring libpq's `sslmode` semantics.
//!
//! | sslmode | encrypted | chain checked | host name checked |
//! |---|---|---|---|
//! | `disable` | no | – | – |
//! | `prefer` (default) | if the server offers TLS | no | no |
//! | `require` | yes | no (yes, like `verify-ca`, when `sslrootcert` is given — libpq does the same) | no |
//! | `verify-ca` | yes | against `sslrootcert`, else the webpki roots | no |
//! | `verify-full` | yes | against `sslrootcert`, else the webpki roots | yes |
//!
//! The "not checked" modes still verify the handshake signatures, so the connection is
//! encrypted to whoever holds the presented certificate's key — what libpq gives too.
//!
//! A server certificate that is itself in `sslrootcert` is trusted as it is, even when it is a
//! CA certificate (`CA:TRUE`): PostgreSQL's documentation makes the server's certificate that
//! way (`openssl req -new -x509 ...`, then `sslrootcert=server.crt`), OpenSSL and so libpq
//! accept it, and webpki alone refuses a CA certificate as a server's. Its validity dates (and
//! for `verify-full` its host name) are still checked.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::url::{DatabaseUrl, SslMode};
use crate::DbError;

/// Builds the TLS connector for `url`. For `sslmode=disable` the connector is never used by
/// the driver, but one is still built so that every connection has the same type.
pub(crate) fn make_tls_connect(url: &DatabaseUrl) -> Result<MakeRustlsConnect, DbError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let setup_error = |reason: String| DbError::TlsSetup {
        server: url.redacted(),
        reason,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| setup_error(e.to_string()))?;

    let verification = match (url.ssl_mode(), url.ssl_root_cert()) {
        (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Verification::None,
        (SslMode::Require | SslMode::VerifyCa, _) => Verification::Chain,
        (SslMode::VerifyFull, _) => Verification::ChainAndHost,
    };

    let config = match verification {
        Verification::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly { provider }))
            .with_no_client_auth(),
        Verification::Chain | Verification::ChainAndHost => {
            let (roots, pinned) = root_store(url).map_err(setup_error)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| setup_error(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(LibpqVerifier {
                    webpki,
                    pinned,
                    check_name: verification == Verification::ChainAndHost,
                }))
                .with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    None,
    Chain,
    ChainAndHost,
}

/// The trust anchors: the certificates in `sslrootcert`, or the Mozilla roots shipped in
/// `webpki-roots` when none is given (or `sslrootcert=system`, as in libpq 16); and the
/// certificates of `sslrootcert` as they are, which a server may present as its own.
fn root_store(url: &DatabaseUrl) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), String> {
    let path = match url.ssl_root_cert() {
        Some(path) if path.as_os_str() != "system" => path,
        _ => {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            return Ok((roots, Vec::new()));
        }
    };
    let mut pinned = Vec::new();
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
    let mut store = RootCertStore::empty();
    let mut reader = pem.as_slice();
    for cert in rustls_pemfile::certs(&mut reader) {
        let cert = cert.map_err(|e| {
            format!(
                "sslrootcert {} is not a valid PEM file: {e}",
                path.display()
            )
        })?;
        pinned.push(cert.clone());
        store.add(cert).map_err(|e| {
            format!(
                "sslrootcert {} contains a certificate rustls cannot use: {e}",
                path.display()
            )
        })?;
    }
    if store.is_empty() {
        return Err(format!(
            "sslrootcert {} contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok((store, pinned))
}

/// A TLS failure in words for people (rustls's own text names Rust enum variants).
pub(crate) fn describe_tls_error(err: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(cert) = err else {
        return format!("TLS handshake failed: {err}");
    };
    match cert {
        CertificateError::UnknownIssuer => "the server's certificate is not signed by a CA \
            pgshift trusts (the certificates in sslrootcert, or without it the public CAs)"
            .to_owned(),
        CertificateError::NotValidForName => {
            "the server's certificate is not valid for name of the host connected to".to_owned()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            // rustls writes the presented names as `DnsName("db.example")`.
            let names: Vec<&str> = presented
                .iter()
                .map(|p| p.split('"').nth(1).unwrap_or(p))
                .collect();
            format!(
                "the server's certificate is not valid for name {}: it names {}",
                expected.to_str(),
                if names.is_empty() {
                    "no host".to_owned()
                } else {
                    names.join(", ")
                }
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server's certificate has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (is this machine's clock right?)".to_owned()
        }
        CertificateError::BadSignature => {
            "the server's certificate has a signature that does not verify".to_owned()
        }
        CertificateError::BadEncoding => "the server's certificate cannot be read".to_owned(),
        _ if is_ca_used_as_end_entity(err) => "the server presents a CA certificate (CA:TRUE) \
            as its own, and it is not in sslrootcert; put the server's certificate in \
            sslrootcert (libpq and pgshift trust it then) or give the server a certificate \
            signed by that CA"
            .to_owned(),
        other => format!("the server's certificate was refused: {other:?}"),
    }
}

/// Accepts any server certificate but still checks the handshake signatures made with it
/// (`sslmode=prefer`/`require`).
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for EncryptOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptOnly")
    }
}

impl ServerCertVerifier for EncryptOnly {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// webpki's verification, read as libpq reads certificates: for `verify-ca` a certificate
/// valid for another name is accepted (webpki checks the chain before the name, so a name
/// error means the chain itself was fine), and a server certificate found as it is in
/// `sslrootcert` is trusted even when it is a CA certificate.
#[derive(Debug)]
struct LibpqVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The certificates of `sslrootcert`.
    pinned: Vec<CertificateDer<'static>>,
    /// `verify-full`.
    check_name: bool,
}

/// webpki's "a CA certificate is used as an end entity", which rustls passes on as an opaque
/// error. webpki checks the validity dates before the basic constraints, so when this is the
/// error the dates were fine.
fn is_ca_used_as_end_entity(err: &rustls::Error) -> bool {
    matches!(err, rustls::Error::InvalidCertificate(CertificateError::Other(other))
        if format!("{other:?}").contains("CaUsedAsEndEntity"))
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Err(err)
                if is_ca_used_as_end_entity(&err)
                    && self
                        .pinned
                        .iter()
                        .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                if self.check_name {
                    let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                    rustls::client::verify_server_name(&parsed, server_name)?;
                }
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> DatabaseUrl {
        DatabaseUrl::parse_with_env(text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_mode_builds_without_a_root_file() {
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            let result = make_tls_connect(&url(&format!("postgres://u:pw@h/d?sslmode={mode}")));
            assert!(result.is_ok(), "{mode}");
        }
    }

    #[test]
    fn missing_root_file_is_a_clear_error_without_password() {
        let result = make_tls_connect(&url(
            "postgres://u:hunter2@h/d?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ));
        let text = match result {
            Ok(_) => panic!("a missing sslrootcert was accepted"),
            Err(err) => err.to_string(),
        };
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn root_file_without_certificates_is_rejected() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
        let result = make_tls_connect(&url(&format!(
            "postgres://h/d?sslmode=verify-ca&sslrootcert={}",
            path.display()
        )));
        match result {
            Ok(_) => panic!("an empty sslrootcert was accepted"),
            Err(err) => assert!(err.to_string().contains("no PEM certificate"), "{err}"),
        }
    }
}
