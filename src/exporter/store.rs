//! The latest result of every configured domain. Scrapes read it; probes replace one entry at a
//! time; a reload adds and removes entries.

use crate::config::DomainConfig;
use crate::model::address::Domain;
use crate::model::history::{Change, DomainMemory};
use crate::model::report::ProbeReport;
use crate::render::html::DomainView;
use crate::render::metrics::{self, DomainSamples};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A domain's configuration and its latest probe.
#[derive(Clone, Debug)]
pub struct DomainEntry {
    /// The configuration it is probed with.
    pub config: Arc<DomainConfig>,
    /// The latest finished probe, if any.
    pub latest: Option<Arc<Latest>>,
}

impl DomainEntry {
    /// What the pages show of it.
    pub fn view(&self) -> DomainView<'_> {
        DomainView {
            domain: &self.config.domain,
            labels: &self.config.labels,
            report: self.latest.as_ref().map(|l| &l.report),
            memory: self.latest.as_ref().map(|l| &l.memory),
            timeline: self.latest.as_ref().map_or(&[], |l| l.timeline.as_slice()),
        }
    }
}

/// A finished probe, what the history knows of the domain, and the rendered samples.
#[derive(Debug)]
pub struct Latest {
    /// The report.
    pub report: ProbeReport,
    /// Its metric lines.
    pub samples: DomainSamples,
    /// The domain's state and its latest delegation change.
    pub memory: DomainMemory,
    /// The latest changes, oldest first.
    pub timeline: Vec<Change>,
}

/// All domains, by name.
#[derive(Debug, Default)]
pub struct Store {
    domains: RwLock<BTreeMap<Domain, DomainEntry>>,
}

impl Store {
    /// Read access for rendering.
    pub fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Domain, DomainEntry>> {
        self.domains
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Domain, DomainEntry>> {
        self.domains
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the store hold exactly `domains`; kept domains keep their latest probe (re-rendered
    /// when their labels or interval changed).
    pub fn replace_domains(&self, domains: &[Arc<DomainConfig>]) {
        let mut map = self.write();
        let mut next = BTreeMap::new();
        for config in domains {
            let latest = map.remove(&config.domain).and_then(|old| {
                let latest = old.latest?;
                if old.config.labels == config.labels && old.config.interval == config.interval {
                    Some(latest)
                } else {
                    Some(Arc::new(render_with_history(
                        config,
                        latest.report.clone(),
                        latest.memory.clone(),
                        latest.timeline.clone(),
                    )))
                }
            });
            next.insert(
                config.domain.clone(),
                DomainEntry {
                    config: config.clone(),
                    latest,
                },
            );
        }
        *map = next;
    }

    /// Records a finished probe, unless the domain was removed (or reconfigured) meanwhile.
    pub fn record(&self, config: &Arc<DomainConfig>, report: ProbeReport) {
        self.record_with_history(config, report, DomainMemory::default(), Vec::new());
    }

    /// Records a finished probe with what the history knows of the domain.
    pub fn record_with_history(
        &self,
        config: &Arc<DomainConfig>,
        report: ProbeReport,
        memory: DomainMemory,
        timeline: Vec<Change>,
    ) {
        let latest = Arc::new(render_with_history(config, report, memory, timeline));
        let mut map = self.write();
        if let Some(entry) = map.get_mut(&config.domain)
            && Arc::ptr_eq(&entry.config, config)
        {
            entry.latest = Some(latest);
        }
    }

    /// The entry of one domain.
    pub fn get(&self, domain: &Domain) -> Option<DomainEntry> {
        self.read().get(domain).cloned()
    }

    /// Number of domains.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// No domains.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The whole `/metrics` exposition: every domain's latest samples, then the exporter's own metrics.
pub fn exposition(
    store: &Store,
    own: &crate::exporter::self_metrics::SelfMetrics,
    format: metrics::Format,
) -> String {
    let mut out = String::new();
    {
        let domains = store.read();
        let size: usize = domains
            .values()
            .filter_map(|e| e.latest.as_ref())
            .map(|l| l.samples.len())
            .sum();
        out.reserve(size + 8192);
        metrics::write_domains(
            &mut out,
            format,
            domains
                .values()
                .filter_map(|e| e.latest.as_ref().map(|l| &l.samples)),
        );
    }
    own.encode(&mut out, format);
    out
}

/// Renders a report's samples with the domain's labels (no history).
pub fn render(config: &DomainConfig, report: ProbeReport) -> Latest {
    render_with_history(config, report, DomainMemory::default(), Vec::new())
}

/// Renders a report's samples with the domain's labels and what the history knows of it.
pub fn render_with_history(
    config: &DomainConfig,
    report: ProbeReport,
    memory: DomainMemory,
    timeline: Vec<Change>,
) -> Latest {
    let labels = metrics::domain_labels(config.domain.display(), &config.labels);
    let samples = metrics::render_domain_with_history(&report, &labels, config.interval, &memory);
    Latest {
        report,
        samples,
        memory,
        timeline,
    }
}
