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
    /// Client configurations, built once: offering `http/1.1` by ALPN, and offering nothing.
    http_config: Result<Arc<ClientConfig>, rustls::Error>,
    plain_config: Result<Arc<ClientConfig>, rustls::Error>,
    trust_memo: Arc<certificate::TrustMemo>,
    facts_memo: Arc<certificate::FactsMemo>,
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
        let provider = Arc::new(probe_provider());
        Self {
            roots: Arc::new(roots),
            http_config: client_config(&provider, &[b"http/1.1"]),
            plain_config: client_config(&provider, &[]),
            provider,
            trust_memo: Arc::default(),
            facts_memo: Arc::default(),
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
        let config = match alpn {
            [] => self.plain_config.clone(),
            [b"http/1.1"] => self.http_config.clone(),
            other => client_config(&self.provider, other),
        };
        let config = match config {
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
        let connector = TlsConnector::from(config);
        let presented = PresentedChain::default();
        let result = PRESENTED
            .scope(
                presented.clone(),
                tokio::time::timeout(timeout, connector.connect(server_name, tcp)),
            )
            .await;
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
        let chain = presented.take();
        let now = unix_now();
        facts.chain = chain
            .iter()
            .map(|der| self.facts_memo.facts(der, now))
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
        let now = unix_now();
        certificate::judge_with(chain, chain_facts, host, now, |chain, facts| {
            self.trust_memo
                .trust(chain, facts, &self.roots, &self.provider, now)
        })
    }
}

/// A client configuration whose verifier records the presented chain and accepts it.
fn client_config(
    provider: &Arc<CryptoProvider>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let recorder = Arc::new(ChainRecorder {
        provider: provider.clone(),
    });
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_no_client_auth();
    // A resumed session skips certificate verification: every probe must see the chain.
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
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

/// aws-lc-rs with the classic key exchanges (X25519, P-256, P-384). rustls's default also offers
/// the post-quantum hybrid X25519MLKEM768 first, whose key share costs more than the rest of the
/// handshake's key exchange. The group a server picks changes nothing the probe judges (the
/// chain, the names, the answer), and every server Outlook meets speaks the classic groups.
///
/// TLS_AES_128_GCM_SHA256 is offered first (rustls, like Windows, puts the AES-256/SHA-384 suite
/// first): the suite's hash runs the whole key schedule and transcript, and SHA-256 has CPU
/// instructions where SHA-384 has none; a check set costs about 6 % less CPU with it (interleaved
/// A/B on the bench world). Every TLS 1.3 implementation must support this suite (RFC 8446
/// §9.1), Go and Chromium offer it first too, and the suite decides nothing the probe judges;
/// the trace shows the one negotiated.
fn probe_provider() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::{cipher_suite, default_provider, kx_group};
    let mut cipher_suites = default_provider().cipher_suites;
    cipher_suites
        .sort_by_key(|suite| suite.suite() != cipher_suite::TLS13_AES_128_GCM_SHA256.suite());
    CryptoProvider {
        cipher_suites,
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        ..default_provider()
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

/// Where the verifier of one handshake leaves the chain the server presented. The client
/// configurations are shared by every handshake (building one per handshake cost more than its
/// key exchange), so the handshake runs inside a task-local scope holding its own slot.
#[derive(Clone, Debug, Default)]
struct PresentedChain(Arc<Mutex<Vec<CertificateDer<'static>>>>);

impl PresentedChain {
    fn put(&self, chain: Vec<CertificateDer<'static>>) {
        match self.0.lock() {
            Ok(mut slot) => *slot = chain,
            Err(poisoned) => *poisoned.into_inner() = chain,
        }
    }

    fn take(&self) -> Vec<CertificateDer<'static>> {
        match self.0.lock() {
            Ok(mut chain) => std::mem::take(&mut *chain),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

tokio::task_local! {
    /// The chain slot of the handshake being polled (rustls calls the verifier from inside
    /// the poll of `TlsConnector::connect`, so it runs within the handshake's scope).
    static PRESENTED: PresentedChain;
}

/// Records the presented chain and accepts it; signatures are still verified, so the peer has
/// to hold the certificate's key.
#[derive(Debug)]
struct ChainRecorder {
    provider: Arc<CryptoProvider>,
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
        // Outside a handshake scope there is nowhere to record; the handshake goes on.
        let _ = PRESENTED.try_with(|slot| slot.put(chain));
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
