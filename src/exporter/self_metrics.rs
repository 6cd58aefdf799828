//! The exporter's own metrics (`autodiscover_exporter_*`) and the process metrics.

use super::process::ProcessCollector;
use crate::model::step::Outcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

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
        Self {
            registry,
            domains,
            probes,
            reload_successful,
            reload_timestamp,
        }
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
