//! `serve`: the exporter on the network.

use super::{EXIT_CANNOT_RUN, ServeArgs, init_logging, parse_listen_address};
use crate::config::Config;
use crate::exporter::web::WebOptions;
use crate::exporter::web_config::WebConfig;
use crate::exporter::{ConfigSource, Exporter, HistoryLocation, ProberFactory, StartOptions, web};
use crate::net::connect::DirectConnector;
use crate::net::dns::Dns;
use crate::net::tls::TlsTrust;
use crate::probe::Prober;
use crate::probe::microsoft365::Microsoft365Client;
use crate::protocol::destination::AddressPolicy;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

pub(super) async fn run(args: ServeArgs) -> ExitCode {
    init_logging(args.log_level, args.log_format);
    match start(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "cannot start");
            eprintln!("error: {message}");
            ExitCode::from(EXIT_CANNOT_RUN)
        }
    }
}

async fn start(args: ServeArgs) -> Result<(), String> {
    let path = args.config_file.ok_or(
        "--config.file is required (try `autodiscover-exporter demo` for a simulated world)",
    )?;
    let address = parse_listen_address(&args.listen_address)?;
    let web = args
        .web_config_file
        .as_deref()
        .map(WebConfig::load)
        .transpose()?
        .map(Arc::new);
    // One Microsoft 365 client for the whole process: its cache, rate limit and throttling
    // pause survive reloads (a reload must not turn into a burst of queries).
    let microsoft365 = Arc::new(Microsoft365Client::default());
    let factory: ProberFactory = Arc::new(move |config: &Config| {
        microsoft365.reconfigure(config.microsoft365.clone());
        Ok(network_prober(config)?.with_microsoft365(microsoft365.clone()))
    });
    let options = StartOptions {
        shard: args.shard,
        history: HistoryLocation::Configured,
        external_url: args.external_url.clone(),
    };
    let exporter = Exporter::start_with(ConfigSource::File(path), factory, options)?;
    let listener = bind(address).await?;
    tracing::info!(
        address = %address,
        domains = exporter.shared().store.len(),
        tls = web.as_ref().is_some_and(|w| w.tls.is_some()),
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );
    let options = WebOptions {
        config: web,
        enable_lifecycle: args.enable_lifecycle,
        shutdown_grace: args.shutdown_grace,
        ..WebOptions::default()
    };
    serve_until_signal(listener, exporter, options).await
}

/// Binds the listen address with a clear error.
pub(super) async fn bind(address: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))
}

/// Serves until SIGTERM or SIGINT; SIGHUP reloads the configuration.
pub(super) async fn serve_until_signal(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    options: WebOptions,
) -> Result<(), String> {
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| format!("SIGHUP handler: {e}"))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let reloader = exporter.clone();
    let reloads = tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            let _ = web::reload(&reloader).await;
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
    };
    web::serve(listener, exporter.clone(), options, shutdown).await;
    reloads.abort();
    exporter.stop();
    Ok(())
}

/// A prober that resolves and connects on the network, as a configuration asks.
pub(super) fn network_prober(config: &Config) -> Result<Prober, String> {
    let nameservers: Vec<SocketAddr> = config.resolver.nameservers.iter().map(|n| n.0).collect();
    let dns = Dns::new(
        &nameservers,
        config.resolver.protocol,
        config.resolver.timeout,
    )
    .map_err(|e| e.to_string())?;
    let trust = TlsTrust::load(config.tls.system_roots, config.tls.ca_file.as_deref())
        .map_err(|e| e.to_string())?;
    if trust.root_count() == 0 {
        tracing::warn!(
            "no trusted root certificates: every certificate will be reported as untrusted"
        );
    }
    let microsoft365 = Arc::new(Microsoft365Client::new(config.microsoft365.clone()));
    let policy = AddressPolicy {
        refuse_private: config.refuse_private_addresses,
    };
    Ok(Prober::new(dns, trust, Arc::new(DirectConnector))
        .with_microsoft365(microsoft365)
        .with_address_policy(policy))
}
