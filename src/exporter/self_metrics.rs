//! The exporter's own metrics (`autodiscover_exporter_*`) and the process metrics.

use super::history::History;
use super::process::ProcessCollector;
use crate::model::step::Outcome;
use crate::probe::microsoft365::Microsoft365Client;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};

/// The revision the binary was built from (`GIT_REVISION` at build time).
pub const REVISION: &str = match option_env!("GIT_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The exporter's own metrics.
#[derive(Debug)]
pub struct SelfMetrics {
    registry: Registry,
    domains: Gauge,
    probes: Family<OutcomeLabels, Counter>,
    reload_successful: Gauge,
    reload_timestamp: Gauge<f64, AtomicU64>,
    microsoft365: Microsoft365Slot,
    history: Arc<RwLock<Option<History>>>,
}

/// Exposes the state of the history database.
#[derive(Debug)]
struct HistoryCollector(Arc<RwLock<Option<History>>>);

impl Collector for HistoryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let history = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(history) = history else {
            return Ok(());
        };
        let family = encoder.encode_descriptor(
            "autodiscover_exporter_history_writable",
            "1 if the history database is open and its last write succeeded; 0 while changes are kept in memory only.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(history.writable())).encode(family)?;
        let family = encoder.encode_descriptor(
            "autodiscover_exporter_history_write_failures",
            "Writes to the history database that failed.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(history.write_failures()).encode(family)?;
        Ok(())
    }
}

/// The Microsoft 365 client of the current prober, whose counters are exported.
type Microsoft365Slot = Arc<RwLock<Option<Arc<Microsoft365Client>>>>;

/// Exposes `autodiscover_exporter_microsoft365_queries_total{result}` from the client's counters.
#[derive(Debug)]
struct Microsoft365Collector(Microsoft365Slot);

impl Collector for Microsoft365Collector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let client = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(client) = client else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            "autodiscover_exporter_microsoft365_queries",
            "Microsoft 365 step runs by how the answer was obtained: queried now, cached, or reused after throttling (429/503), the rate limit, or a failure.",
            None,
            MetricType::Counter,
        )?;
        for (source, count) in client.counts() {
            let labels = [("result", source.as_str())];
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        registry.register(
            "autodiscover_exporter_build",
            "Version and revision of the exporter.",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", REVISION),
            ]),
        );
        let domains = Gauge::default();
        registry.register(
            "autodiscover_exporter_domains",
            "Configured domains probed by this exporter (this shard).",
            domains.clone(),
        );
        let probes = Family::<OutcomeLabels, Counter>::default();
        for outcome in Outcome::ALL {
            let _ = probes.get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            });
        }
        registry.register(
            "autodiscover_exporter_probes",
            "Background probes finished, by outcome.",
            probes.clone(),
        );
        let reload_successful = Gauge::default();
        registry.register(
            "autodiscover_exporter_config_last_reload_successful",
            "1 if the last configuration load succeeded.",
            reload_successful.clone(),
        );
        let reload_timestamp = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "autodiscover_exporter_config_last_reload_success_timestamp",
            "When the configuration was last loaded successfully, Unix time.",
            Unit::Seconds,
            reload_timestamp.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        let microsoft365 = Microsoft365Slot::default();
        registry.register_collector(Box::new(Microsoft365Collector(microsoft365.clone())));
        let history = Arc::new(RwLock::new(None));
        registry.register_collector(Box::new(HistoryCollector(history.clone())));
        Self {
            microsoft365,
            history,
            registry,
            domains,
            probes,
            reload_successful,
            reload_timestamp,
        }
    }

    /// Exports the counters of `client` (the current prober's).
    pub fn watch_microsoft365(&self, client: Arc<Microsoft365Client>) {
        *self
            .microsoft365
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(client);
    }

    /// Exports `autodiscover_exporter_web_info{external_url}`: alert rules read it to link to
    /// the domain pages of the replica that probes the domain.
    pub fn set_external_url(&mut self, external_url: &str) {
        self.registry.register(
            "autodiscover_exporter_web",
            "The URL users reach this exporter at (--web.external-url; empty when not set).",
            Info::new(vec![("external_url", external_url.to_owned())]),
        );
    }

    /// Exports the state of `history`.
    pub fn watch_history(&self, history: History) {
        *self.history.write().unwrap_or_else(PoisonError::into_inner) = Some(history);
    }

    /// Counts a finished probe.
    pub fn probe_finished(&self, outcome: Outcome) {
        self.probes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Records a configuration load.
    pub fn config_loaded(&self, success: bool, domains: usize) {
        self.reload_successful.set(i64::from(success));
        if success {
            self.reload_timestamp
                .set(crate::net::tls::unix_now() as f64);
            self.domains.set(domains as i64);
        }
    }

    /// Appends the metrics in `format` (OpenMetrics output ends with `# EOF`).
    pub fn encode(&self, out: &mut String, format: crate::render::metrics::Format) {
        use crate::render::metrics::Format;
        let result = match format {
            Format::Classic => {
                prometheus_client::encoding::prometheus_text::encode(out, &self.registry)
            }
            Format::OpenMetrics => prometheus_client::encoding::text::encode(out, &self.registry),
        };
        if result.is_err() {
            tracing::warn!("encoding the exporter's own metrics failed");
        }
    }
}
