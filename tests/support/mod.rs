//! Shared helpers: one simulated world per test binary, short timeouts.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use autodiscover_exporter::diagnose::{self, Expectations};
use autodiscover_exporter::lab::{scenarios, world::World};
use autodiscover_exporter::model::address::MailAddress;
use autodiscover_exporter::model::report::ProbeReport;
use autodiscover_exporter::probe::credentials::CredentialsPolicy;
use autodiscover_exporter::probe::{ProbeOptions, Prober};
use std::time::Duration;

/// Probe options that keep timeouts short in tests.
pub fn fast_options() -> ProbeOptions {
    ProbeOptions {
        timeout: Duration::from_secs(10),
        step_timeout: Duration::from_secs(6),
        phase_timeout: Duration::from_millis(1500),
        ..ProbeOptions::default()
    }
}

/// Starts the catalogue world.
pub async fn world() -> (World, Prober) {
    let world = scenarios::world().unwrap().start().await.unwrap();
    let prober = world.prober().unwrap();
    (world, prober)
}

/// Probes `someone@domain`.
pub async fn probe(prober: &Prober, domain: &str) -> ProbeReport {
    probe_address(prober, &format!("someone@{domain}")).await
}

/// Probes an address and explains the report, as `check` does; a scenario with a probe account
/// is probed with it (written to a 0600 credentials file).
pub async fn probe_address(prober: &Prober, address: &str) -> ProbeReport {
    let address = MailAddress::parse(address).unwrap();
    let mut options = fast_options();
    if let Some(account) = scenarios::catalogue()
        .iter()
        .find(|s| s.domain == address.domain().ascii())
        .and_then(|s| s.credentials)
    {
        options.credentials = Some(CredentialsPolicy {
            file: account
                .write_file(&credentials_dir(), address.domain().ascii())
                .unwrap(),
            hosts: Vec::new(),
        });
    }
    probe_with(prober, &address.to_string(), &options).await
}

/// Probes an address with `options` and explains the report.
pub async fn probe_with(prober: &Prober, address: &str, options: &ProbeOptions) -> ProbeReport {
    let address = MailAddress::parse(address).unwrap();
    let mut report = prober.probe(&address, options).await;
    report.findings = diagnose::explain(&report, &Expectations::default());
    report
}

/// A directory of this test process for credentials files, under the target directory (Cargo's
/// scratch space for integration tests), so runs leave nothing in the system's temp directory.
pub fn credentials_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("credentials-{}", std::process::id()))
}

use autodiscover_exporter::config::Config;
use autodiscover_exporter::exporter::web_config::WebConfig;
use autodiscover_exporter::exporter::{
    ConfigSource, Exporter, HistoryLocation, ProberFactory, StartOptions, web,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Served with `web_config` and the lifecycle API on (the tests reload over HTTP).
fn web_options(web_config: Option<WebConfig>) -> web::WebOptions {
    web::WebOptions {
        config: web_config.map(Arc::new),
        enable_lifecycle: true,
        ..web::WebOptions::default()
    }
}

/// History in memory: tests leave no files behind.
fn memory_history() -> StartOptions {
    StartOptions {
        history: HistoryLocation::Memory,
        ..StartOptions::default()
    }
}

/// A running exporter on 127.0.0.1 probing the simulated world.
pub struct RunningExporter {
    pub address: SocketAddr,
    pub exporter: Arc<Exporter>,
    pub world: World,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl RunningExporter {
    /// Starts the exporter with `source` and waits until every configured domain has a result.
    pub async fn start(source: ConfigSource, web_config: Option<WebConfig>) -> Self {
        Self::start_in(scenarios::world().unwrap(), source, web_config).await
    }

    /// Starts the exporter probing `world` instead of the catalogue.
    pub async fn start_in(
        world: autodiscover_exporter::lab::world::WorldBuilder,
        source: ConfigSource,
        web_config: Option<WebConfig>,
    ) -> Self {
        Self::start_with_options(world, source, web_options(web_config)).await
    }

    /// Starts the exporter probing `world`, served with `options`.
    pub async fn start_with_options(
        world: autodiscover_exporter::lab::world::WorldBuilder,
        source: ConfigSource,
        options: web::WebOptions,
    ) -> Self {
        Self::start_full(world, source, options, memory_history()).await
    }

    /// Starts the exporter with `options` (history location, external URL).
    pub async fn start_with(
        source: ConfigSource,
        web_config: Option<WebConfig>,
        options: StartOptions,
    ) -> Self {
        Self::start_full(
            scenarios::world().unwrap(),
            source,
            web_options(web_config),
            options,
        )
        .await
    }

    /// Starts the exporter probing `world` with `start` options, served with `options`.
    pub async fn start_full(
        world: autodiscover_exporter::lab::world::WorldBuilder,
        source: ConfigSource,
        options: web::WebOptions,
        start: StartOptions,
    ) -> Self {
        let world = world.start().await.unwrap();
        let prober = world.prober().unwrap();
        let factory: ProberFactory = Arc::new(move |_| Ok(prober.clone()));
        let exporter = Exporter::start_with(source, factory, start).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(web::serve(
            listener,
            exporter.clone(),
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        let running = Self {
            address,
            exporter,
            world,
            stop: Some(stop),
            server: Some(server),
        };
        running.wait_for_results().await;
        running
    }

    /// Waits (bounded) until every domain in the store has a probe result.
    pub async fn wait_for_results(&self) {
        for _ in 0..200 {
            let done = self
                .exporter
                .shared()
                .store
                .read()
                .values()
                .all(|e| e.latest.is_some());
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("domains were not probed within 10 s");
    }

    /// Signals the server to shut down (open requests get the grace period) and returns the
    /// server task.
    pub fn shut_down(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.take()
    }

    /// Stops the server and the probes.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
        self.exporter.stop();
    }
}

/// A configuration for the given catalogue domains, probed every 10 s with short timeouts.
pub fn config_yaml(domains: &[(&str, &str)]) -> String {
    let mut yaml = String::from(
        "defaults:\n  interval: 10s\n  timeout: 8s\n  step_timeout: 5s\n  phase_timeout: 1500ms\nconcurrency: 4\ndomains:\n",
    );
    for (domain, customer) in domains {
        yaml.push_str(&format!(
            "  - domain: {domain}\n    email: someone@{domain}\n    labels: {{customer: {customer}}}\n"
        ));
    }
    yaml
}

/// A fixed configuration.
pub fn fixed(yaml: &str) -> ConfigSource {
    ConfigSource::Fixed(Box::new(Config::parse(yaml).unwrap()))
}

/// A simple HTTP/1.1 response.
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
    /// The body as it came over the wire.
    pub raw: Vec<u8>,
}

/// Sends one request over a fresh connection (plain TCP).
pub async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    send(tcp, address, method, path, headers).await
}

/// Sends one request over TLS, trusting `ca`.
pub async fn request_tls(
    address: SocketAddr,
    ca: &rustls_pki_types::CertificateDer<'static>,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("exporter.lab.example").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    send(tls, address, "GET", path, headers).await
}

async fn send<S>(
    stream: S,
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", address.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        sender.send_request(builder.body(Full::new(Bytes::new())).unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        raw: body.to_vec(),
    }
}
