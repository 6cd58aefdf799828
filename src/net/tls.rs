//! TLS through rustls, capturing the presented chain even when it is invalid.
//!
//! The handshake accepts any chain (after checking that the server holds the key), so the probe
//! can see what answers behind an invalid certificate; the certificate is judged afterwards, by
//! `certificate::judge`, against the host name the client asked for.

use super::certificate;
use crate::model::facts::{CertificateFacts, CertificateVerdict, TlsFacts, TlsHandshake};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Trust settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file cannot be read or holds no certificate.
    #[error("cannot load CA certificates from {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the protocol configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The roots and crypto provider every probe uses.
#[derive(Clone, Debug)]
pub struct TlsTrust {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl TlsTrust {
    /// System roots (when `system_roots`) plus the certificates of `ca_file`.
    pub fn load(system_roots: bool, ca_file: Option<&Path>) -> Result<Self, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        if system_roots {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
        if let Some(path) = ca_file {
            let ca_error = |reason: String| TlsSetupError::CaFile {
                path: path.to_owned(),
                reason,
            };
            let mut added = 0;
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))? {
                let cert = cert.map_err(|e| ca_error(e.to_string()))?;
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(ca_error("no PEM certificate in the file".into()));
            }
        }
        Ok(Self::from_roots(roots))
    }

    /// Trust exactly these roots.
    pub fn from_roots(roots: RootCertStore) -> Self {
        Self {
            roots: Arc::new(roots),
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        }
    }

    /// Number of trusted roots.
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// Runs a TLS handshake for `host` over `tcp` (offering HTTP/1.1 by ALPN) and judges the
    /// presented certificate.
    pub async fn handshake(&self, tcp: TcpStream, host: &str, timeout: Duration) -> TlsOutcome {
        self.handshake_with(tcp, host, timeout, &[b"http/1.1"])
            .await
    }

    /// Like [`Self::handshake`], offering the given ALPN protocols (none for mail protocols:
    /// servers that check ALPN would refuse `http/1.1`).
    pub async fn handshake_with(
        &self,
        tcp: TcpStream,
        host: &str,
        timeout: Duration,
        alpn: &[&[u8]],
    ) -> TlsOutcome {
        let started = Instant::now();
        let recorder = Arc::new(ChainRecorder {
            provider: self.provider.clone(),
            chain: Mutex::new(Vec::new()),
        });
        let mut facts = TlsFacts {
            handshake: TlsHandshake::Failed {
                error: String::new(),
            },
            version: None,
            cipher: None,
            chain: Vec::new(),
            verdict: None,
            duration_seconds: 0.0,
        };
        let config = match self.client_config(recorder.clone(), alpn) {
            Ok(config) => config,
            Err(error) => {
                facts.handshake = TlsHandshake::Failed {
                    error: error.to_string(),
                };
                return TlsOutcome::failed(facts);
            }
        };
        let server_name = match ServerName::try_from(host.to_owned()) {
            Ok(name) => name,
            Err(error) => {
                facts.handshake = TlsHandshake::Failed {
                    error: format!("invalid server name {host:?}: {error}"),
                };
                return TlsOutcome::failed(facts);
            }
        };
        let connector = TlsConnector::from(Arc::new(config));
        let result = tokio::time::timeout(timeout, connector.connect(server_name, tcp)).await;
        facts.duration_seconds = started.elapsed().as_secs_f64();
        let stream = match result {
            Err(_) => {
                facts.handshake = TlsHandshake::TimedOut;
                None
            }
            Ok(Err(error)) => {
                facts.handshake = TlsHandshake::Failed {
                    error: describe_io_error(&error),
                };
                None
            }
            Ok(Ok(stream)) => {
                let (_, connection) = stream.get_ref();
                facts.handshake = TlsHandshake::Established;
                facts.version = connection.protocol_version().map(|v| format!("{v:?}"));
                facts.cipher = connection
                    .negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()));
                Some(stream)
            }
        };
        let chain = recorder.take();
        let now = unix_now();
        facts.chain = chain
            .iter()
            .map(|der| certificate::facts(der, now))
            .collect();
        facts.verdict = self.judge(&chain, &facts.chain, host);
        TlsOutcome {
            facts,
            stream,
            chain,
        }
    }

    /// Judges a chain (leaf first) for `host` against this trust store, now.
    pub fn judge(
        &self,
        chain: &[CertificateDer<'static>],
        chain_facts: &[CertificateFacts],
        host: &str,
    ) -> Option<CertificateVerdict> {
        certificate::judge(
            chain,
            chain_facts,
            host,
            &self.roots,
            &self.provider,
            unix_now(),
        )
    }

    fn client_config(
        &self,
        recorder: Arc<ChainRecorder>,
        alpn: &[&[u8]],
    ) -> Result<ClientConfig, rustls::Error> {
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(recorder)
            .with_no_client_auth();
        // A resumed session skips certificate verification: every probe must see the chain.
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// What a handshake produced: its facts, the stream when it completed, and the presented chain
/// in DER (leaf first), which the probe may complete from AIA URLs and judge again.
pub struct TlsOutcome {
    /// What was observed.
    pub facts: TlsFacts,
    /// The TLS stream, when the handshake completed.
    pub stream: Option<TlsStream<TcpStream>>,
    /// The presented chain.
    pub chain: Vec<CertificateDer<'static>>,
}

impl TlsOutcome {
    fn failed(facts: TlsFacts) -> Self {
        Self {
            facts,
            stream: None,
            chain: Vec::new(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn describe_io_error(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => error.to_string(),
    }
}

/// Records the presented chain and accepts it; signatures are still verified, so the peer has
/// to hold the certificate's key.
#[derive(Debug)]
struct ChainRecorder {
    provider: Arc<CryptoProvider>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl ChainRecorder {
    fn take(&self) -> Vec<CertificateDer<'static>> {
        match self.chain.lock() {
            Ok(mut chain) => std::mem::take(&mut *chain),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl ServerCertVerifier for ChainRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        match self.chain.lock() {
            Ok(mut slot) => *slot = chain,
            Err(poisoned) => *poisoned.into_inner() = chain,
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
