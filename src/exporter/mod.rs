//! The long-running exporter: configuration and reloads, background probing, on-demand probes.

pub mod exposition;
pub mod history;
pub mod process;
pub mod scheduler;
pub mod self_metrics;
pub mod store;
pub mod web;
pub mod web_config;

use crate::config::{Config, DomainConfig};
use crate::diagnose::Expectations;
use crate::model::address::ProbeTarget;
use crate::model::report::ProbeReport;
use crate::probe::{ProbeOptions, Prober};
use crate::render::html::ReloadFailure;
use futures_util::future::{self, BoxFuture, FutureExt};
use history::History;
use scheduler::{Scheduler, fnv1a};
use self_metrics::SelfMetrics;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use store::Store;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How much longer than its budget a `/probe` request waits for the probe's own answer.
const FLIGHT_GRACE: Duration = Duration::from_millis(100);
/// An on-demand probe gets at least this long, or a 503.
const MIN_ON_DEMAND_BUDGET: Duration = Duration::from_millis(250);

/// Builds the prober a configuration asks for (the lab's for `demo`, the network's otherwise).
pub type ProberFactory = Arc<dyn Fn(&Config) -> Result<Prober, String> + Send + Sync>;

/// Where the configuration comes from.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    /// Read from this file at start and at every reload.
    File(PathBuf),
    /// Fixed in memory (`demo`, tests).
    Fixed(Box<Config>),
}

/// Where the history of changes is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HistoryLocation {
    /// `storage.path` of the configuration (by default a file in the working directory).
    #[default]
    Configured,
    /// In memory, gone at exit (`demo`, tests).
    Memory,
}

/// How the exporter runs, beyond its configuration file.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// `--shard I/N`: probe only this share of the domains.
    pub shard: Option<(u32, u32)>,
    /// Where the history lives.
    pub history: HistoryLocation,
    /// `--web.external-url`: the URL users reach the exporter at (links in pages and alerts),
    /// without a trailing slash; empty for relative links.
    pub external_url: String,
}

/// State shared by the scheduler's tasks and the web handlers.
pub struct Shared {
    /// Latest results.
    pub store: Store,
    /// The exporter's own metrics.
    pub metrics: SelfMetrics,
    /// The history of changes.
    pub history: History,
    /// The gzip `/metrics` streams.
    pub exposition: exposition::GzipExposition,
    /// The URL users reach the exporter at, without a trailing slash (may be empty).
    pub external_url: String,
    /// The Content-Security-Policy of every answer (it depends on the external URL alone).
    pub content_security_policy: String,
    /// The latest configuration reload, when it failed (for the pages' banner).
    reload_failure: RwLock<Option<ReloadFailure>>,
    prober: RwLock<Arc<Prober>>,
    semaphore: RwLock<Arc<Semaphore>>,
    config: RwLock<Arc<Config>>,
    ready: AtomicBool,
}

impl Shared {
    /// The prober of the current configuration.
    pub fn prober(&self) -> Arc<Prober> {
        self.prober
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The concurrency limit of the current configuration.
    pub fn semaphore(&self) -> Arc<Semaphore> {
        self.semaphore
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The latest configuration reload, when it failed.
    pub fn reload_failure(&self) -> Option<ReloadFailure> {
        self.reload_failure
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_reload_failure(&self, failure: Option<ReloadFailure>) {
        *self
            .reload_failure
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = failure;
    }

    /// The first configuration is loaded and probing has started.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Why `/probe` refuses a target.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeRefusal {
    /// Not a domain or address.
    #[error("target {0:?} is not a domain or a mail address")]
    Invalid(String),
    /// Not configured, and the configuration does not allow other targets.
    #[error(
        "target {0} is not a configured domain (set allow_any_target: true to probe any domain)"
    )]
    NotConfigured(String),
    /// Every probe slot (`concurrency`) stayed taken, or the probe did not finish, within the
    /// scrape's time.
    #[error("{0}")]
    Busy(String),
}

impl ProbeRefusal {
    /// Most characters of a refused target echoed back in the error.
    const ECHO_LIMIT: usize = 256;

    fn invalid(target: &str) -> Self {
        let target = target.trim();
        let mut echo: String = target.chars().take(Self::ECHO_LIMIT).collect();
        if echo.len() < target.len() {
            echo.push('…');
        }
        Self::Invalid(echo)
    }
}

/// An on-demand probe in progress, awaited by every identical `/probe` request.
type Flight = future::Shared<BoxFuture<'static, Result<Arc<ProbeReport>, ProbeRefusal>>>;

/// On-demand probes in progress, by probe address.
type Flights = Arc<Mutex<HashMap<String, Flight>>>;

/// The exporter.
pub struct Exporter {
    shared: Arc<Shared>,
    scheduler: Mutex<Scheduler>,
    refresher: tokio::task::JoinHandle<()>,
    source: ConfigSource,
    factory: ProberFactory,
    shard: Option<(u32, u32)>,
    flights: Flights,
}

impl Exporter {
    /// Loads the configuration and starts probing, with the history in memory (tests,
    /// embedding). `serve` uses [`Self::start_with`] and the configured history file.
    pub fn start(
        source: ConfigSource,
        factory: ProberFactory,
        shard: Option<(u32, u32)>,
    ) -> Result<Arc<Self>, String> {
        let options = StartOptions {
            shard,
            history: HistoryLocation::Memory,
            external_url: String::new(),
        };
        Self::start_with(source, factory, options)
    }

    /// Loads the configuration, opens the history and starts probing. The first load must
    /// succeed; a history that cannot be opened is logged and probing goes on without it.
    pub fn start_with(
        source: ConfigSource,
        factory: ProberFactory,
        options: StartOptions,
    ) -> Result<Arc<Self>, String> {
        let config = load(&source)?;
        let prober = factory(&config)?;
        let shard = options.shard;
        let history = open_history(&config, &options);
        let mut metrics = SelfMetrics::new();
        metrics.set_external_url(options.external_url.trim_end_matches('/'));
        metrics.watch_history(history.clone());
        let shared = Arc::new(Shared {
            store: Store::default(),
            metrics,
            history,
            exposition: exposition::GzipExposition::default(),
            external_url: options.external_url.trim_end_matches('/').to_owned(),
            content_security_policy: crate::render::html::content_security_policy(
                options.external_url.trim_end_matches('/'),
            ),
            reload_failure: RwLock::new(None),
            prober: RwLock::new(Arc::new(prober)),
            semaphore: RwLock::new(Arc::new(Semaphore::new(config.concurrency))),
            config: RwLock::new(Arc::new(config.clone())),
            ready: AtomicBool::new(false),
        });
        let refresher = tokio::spawn(exposition::refresh_forever(shared.clone()));
        let exporter = Arc::new(Self {
            shared,
            scheduler: Mutex::new(Scheduler::default()),
            refresher,
            source,
            factory,
            shard,
            flights: Flights::default(),
        });
        exporter
            .shared
            .metrics
            .watch_microsoft365(exporter.shared.prober().microsoft365().clone());
        exporter.apply(config, None);
        exporter.shared.ready.store(true, Ordering::Relaxed);
        Ok(exporter)
    }

    /// State shared with the web handlers.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Reloads the configuration. A bad one keeps the running configuration.
    pub fn reload(&self) -> Result<usize, String> {
        let result = load(&self.source).and_then(|config| {
            let prober = (self.factory)(&config)?;
            Ok((config, prober))
        });
        match result {
            Ok((config, prober)) => {
                if config.storage != self.shared.config().storage {
                    tracing::warn!("storage settings changed: they take effect at the next start");
                }
                let count = self.apply(config, Some(prober));
                self.shared.set_reload_failure(None);
                tracing::info!(domains = count, "configuration reloaded");
                Ok(count)
            }
            Err(error) => {
                self.shared.metrics.config_loaded(false, 0);
                self.shared.set_reload_failure(Some(ReloadFailure {
                    at: crate::net::tls::unix_now(),
                    error: error.clone(),
                }));
                tracing::error!(%error, "configuration reload failed; keeping the running configuration");
                Err(error)
            }
        }
    }

    fn apply(&self, config: Config, prober: Option<Prober>) -> usize {
        let old_concurrency = self.shared.config().concurrency;
        let domains: Vec<Arc<DomainConfig>> = config
            .domains
            .iter()
            .filter(|d| self.in_shard(d.domain.ascii()))
            .map(|d| match self.shared.store.get(&d.domain) {
                // An unchanged domain keeps its task, and with it its schedule.
                Some(entry) if *entry.config == *d => entry.config,
                _ => Arc::new(d.clone()),
            })
            .collect();
        if let Some(prober) = prober {
            self.shared
                .metrics
                .watch_microsoft365(prober.microsoft365().clone());
            *self
                .shared
                .prober
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(prober);
        }
        if config.concurrency != old_concurrency {
            *self
                .shared
                .semaphore
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Arc::new(Semaphore::new(config.concurrency));
        }
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        self.shared.store.replace_domains(&domains);
        self.scheduler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .apply(&self.shared, &domains);
        self.shared.metrics.config_loaded(true, domains.len());
        domains.len()
    }

    fn in_shard(&self, domain: &str) -> bool {
        match self.shard {
            Some((index, count)) => fnv1a(domain) % u64::from(count) == u64::from(index - 1),
            None => true,
        }
    }

    /// Probes `target` now (the `/probe` endpoint), within `deadline` when the scraper gave one
    /// (the probe timeout otherwise). The probe takes one of the `concurrency` slots the
    /// scheduler uses, waiting for one at most until the deadline; identical requests that
    /// arrive while it runs share it. The report comes without findings: the metrics do not
    /// read them, and writing them out cost about 1 % of a check set's instructions, so only
    /// the caller that shows them (`debug=true`) runs the diagnosis.
    pub async fn probe_now(
        &self,
        target: &str,
        deadline: Option<Duration>,
    ) -> Result<(Arc<ProbeReport>, Arc<DomainConfig>), ProbeRefusal> {
        let config = self.shared.config();
        let parsed = ProbeTarget::parse(target).map_err(|_| ProbeRefusal::invalid(target))?;
        let domain = parsed.domain().clone();
        let address = config
            .address_for(&parsed)
            .map_err(|_| ProbeRefusal::invalid(target))?;
        let entry = match config.domain(&domain) {
            Some(entry) => DomainConfig {
                address,
                ..entry.clone()
            },
            None if config.allow_any_target => DomainConfig {
                address,
                expect: Expectations::default(),
                labels: Default::default(),
                interval: config.defaults.interval,
                probe: config.ad_hoc_options(),
                domain,
            },
            None => return Err(ProbeRefusal::NotConfigured(domain.to_string())),
        };
        let entry = Arc::new(entry);
        let budget = deadline.map_or(entry.probe.timeout, |d| d.min(entry.probe.timeout));
        let until = Instant::now() + budget;
        let flight = self.flight(&entry, until);
        // A moment of grace, so the flight's own refusal (no slot in time) is the answer.
        match tokio::time::timeout_at(until + FLIGHT_GRACE, flight).await {
            Ok(Ok(report)) => Ok((report, entry)),
            Ok(Err(refusal)) => Err(refusal),
            Err(_) => Err(ProbeRefusal::Busy(format!(
                "the probe of {} did not finish within {}",
                entry.address,
                humantime::format_duration(budget)
            ))),
        }
    }

    /// The probe of `entry`'s address in progress, or a new one (a task of its own, so it frees
    /// its slot even when every client has gone).
    fn flight(&self, entry: &Arc<DomainConfig>, until: Instant) -> Flight {
        let key = entry.address.ascii();
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(flight) = flights.get(&key) {
            return flight.clone();
        }
        let task = tokio::spawn({
            let shared = self.shared.clone();
            let flights = self.flights.clone();
            let entry = entry.clone();
            let key = key.clone();
            async move {
                let result = probe_within(&shared, &entry, until).await;
                flights
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&key);
                result
            }
        });
        let flight = async move {
            task.await
                .unwrap_or_else(|e| Err(ProbeRefusal::Busy(format!("the probe failed: {e}"))))
        }
        .boxed()
        .shared();
        flights.insert(key, flight.clone());
        flight
    }

    /// Has the background task of a configured `domain` probe it now; false when the domain
    /// is not configured (on this shard).
    pub fn trigger_probe(&self, domain: &crate::model::address::Domain) -> bool {
        self.scheduler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .probe_now(domain.ascii())
    }

    /// Stops background probing.
    pub fn stop(&self) {
        self.refresher.abort();
        self.scheduler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stop();
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

/// One on-demand probe: a slot of the scheduler's semaphore (waiting until `until` at most),
/// then the probe in the time that is left.
async fn probe_within(
    shared: &Shared,
    entry: &DomainConfig,
    until: Instant,
) -> Result<Arc<ProbeReport>, ProbeRefusal> {
    let semaphore = shared.semaphore();
    let permit = tokio::time::timeout_at(until, semaphore.acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            ProbeRefusal::Busy(format!(
                "all {} probe slots (concurrency) stayed busy; try again later",
                shared.config().concurrency
            ))
        })?;
    let left = until.saturating_duration_since(Instant::now());
    if left < MIN_ON_DEMAND_BUDGET {
        return Err(ProbeRefusal::Busy(format!(
            "a probe slot came free too late to probe {} in the scrape's time",
            entry.address
        )));
    }
    let mut options: ProbeOptions = entry.probe.clone();
    options.timeout = options.timeout.min(left);
    let report = shared.prober().probe(&entry.address, &options).await;
    drop(permit);
    Ok(Arc::new(report))
}

fn open_history(config: &Config, options: &StartOptions) -> History {
    let storage = &config.storage;
    let path = match options.history {
        HistoryLocation::Memory => PathBuf::from(":memory:"),
        HistoryLocation::Configured => storage.resolved_path(options.shard),
    };
    match History::open(&path, storage.retention, storage.max_events_per_domain) {
        Ok(history) => {
            tracing::info!(path = %path.display(), retention = %humantime::format_duration(storage.retention), "history opened");
            history
        }
        Err(error) => {
            tracing::error!(%error, "cannot open the history; probing goes on, changes are kept in memory only (autodiscover_exporter_history_writable 0)");
            History::disabled()
        }
    }
}

fn load(source: &ConfigSource) -> Result<Config, String> {
    let config = match source {
        ConfigSource::File(path) => Config::load(path).map_err(|e| e.to_string())?,
        ConfigSource::Fixed(config) => (**config).clone(),
    };
    for warning in &config.warnings {
        tracing::warn!(%warning, "odd configuration");
    }
    Ok(config)
}
