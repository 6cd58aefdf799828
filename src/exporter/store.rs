//! The latest result of every configured domain. Scrapes read it; probes replace one entry at a
//! time; a reload adds and removes entries.

use crate::config::DomainConfig;
use crate::model::address::Domain;
use crate::model::history::{Change, DomainMemory};
use crate::model::report::ProbeReport;
use crate::render::gzip::{self, DeflateWriter};
use crate::render::html::{DomainView, ReportSummary};
use crate::render::metrics::{self, PackedSamples};
use flate2::Compression;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

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
            summary: self.latest.as_ref().map(|l| &l.summary),
            memory: self.latest.as_ref().map(|l| &*l.memory),
            timeline: self.latest.as_ref().map_or(&[], |l| &*l.timeline),
        }
    }
}

/// A finished probe as the exporter keeps it: the report packed (a domain page unpacks it), what
/// the status page and the metrics need of it unpacked, and what the history knows.
#[derive(Debug)]
pub struct Latest {
    report: Packed,
    /// What the history knows of the domain, whole (the domain's task compares the next probe
    /// with it), packed.
    state: Packed,
    /// When the probe started, Unix seconds.
    pub started_at: i64,
    /// What the status page shows of the report.
    pub summary: ReportSummary,
    /// Its metric lines, packed.
    pub samples: PackedSamples,
    /// When the domain last changed and its latest delegation change (what pages and metrics
    /// show; the state itself is in `state`).
    pub memory: Arc<DomainMemory>,
    /// The latest changes, oldest first (shared with the domain's task).
    pub timeline: Arc<[Change]>,
}

impl Latest {
    /// The full report.
    pub fn report(&self) -> Result<ProbeReport, String> {
        self.report.unpack()
    }

    /// What the history knows of the domain, state included.
    pub fn full_memory(&self) -> Result<DomainMemory, String> {
        self.state.unpack()
    }

    /// Bytes the packed report takes.
    pub fn packed_len(&self) -> usize {
        self.report.bytes.len()
    }
}

/// A value as deflated JSON. A report is tens of kilobytes of mostly repeated text, and only a
/// domain's own page (or a reload that changes its labels) needs it whole; a domain's history
/// state is needed once per probe. The deflate stream starts from a dictionary, the JSON of an
/// earlier value of the same kind: domains of one exporter share most of their keys and values,
/// so a report costs about a kilobyte instead of three.
#[derive(Debug)]
struct Packed {
    bytes: Box<[u8]>,
    dictionary: Arc<[u8]>,
}

/// Deflate level of kept values: packing happens once per probe, unpacking once per page view.
const PACK_LEVEL: u32 = 6;
/// Longest dictionary deflate can use (its window).
const DICTIONARY_WINDOW: usize = 32 * 1024;
/// A report this small says too little about the others to serve as their dictionary.
const SHORTEST_DICTIONARY: usize = 2048;

impl Packed {
    /// Packs `value`; the first value at least `shortest` bytes long becomes the dictionary.
    fn pack<T: serde::Serialize>(
        value: &T,
        dictionaries: &OnceLock<Arc<[u8]>>,
        shortest: usize,
    ) -> Self {
        let empty: Arc<[u8]> = Arc::from(Vec::new());
        let packed = serde_json::to_vec(value)
            .map_err(std::io::Error::from)
            .and_then(|json| {
                let dictionary = match dictionaries.get() {
                    Some(dictionary) => dictionary.clone(),
                    None => {
                        if json.len() >= shortest {
                            let tail = &json[json.len().saturating_sub(DICTIONARY_WINDOW)..];
                            let _ = dictionaries.set(Arc::from(tail));
                        }
                        empty.clone()
                    }
                };
                let mut writer =
                    DeflateWriter::with_dictionary(Compression::new(PACK_LEVEL), &dictionary)?;
                writer.write_all(&json)?;
                Ok((writer.finished()?.bytes, dictionary))
            });
        match packed {
            Ok((bytes, dictionary)) => Self {
                bytes: bytes.into_boxed_slice(),
                dictionary,
            },
            // Writing JSON into memory cannot fail; keep nothing rather than panic if it did.
            Err(error) => {
                tracing::error!(%error, "packing a value failed");
                Self {
                    bytes: Box::default(),
                    dictionary: empty,
                }
            }
        }
    }

    fn unpack<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        let json = gzip::inflate(&self.bytes, &self.dictionary)
            .map_err(|e| format!("unpacking a kept value: {e}"))?;
        serde_json::from_slice(&json).map_err(|e| format!("reading a kept value: {e}"))
    }
}

/// All domains, by name.
#[derive(Debug, Default)]
pub struct Store {
    domains: RwLock<BTreeMap<Domain, DomainEntry>>,
    generation: AtomicU64,
    dictionary: OnceLock<Arc<[u8]>>,
    sample_dictionary: OnceLock<Arc<[u8]>>,
    state_dictionary: OnceLock<Arc<[u8]>>,
}

impl Store {
    /// Read access for rendering.
    pub fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Domain, DomainEntry>> {
        self.domains
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Domain, DomainEntry>> {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.domains
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes with every recorded probe and every reload: equal numbers, same content.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Every domain's latest probe, in domain order, with the generation they belong to. The
    /// lock is held only to copy the pointers, never while rendering.
    pub fn snapshot(&self) -> (u64, Vec<Arc<Latest>>) {
        let map = self.read();
        let generation = self.generation();
        let latest = map.values().filter_map(|e| e.latest.clone()).collect();
        (generation, latest)
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
                    return Some(latest);
                }
                match latest.report().and_then(|r| Ok((r, latest.full_memory()?))) {
                    Ok((report, memory)) => Some(Arc::new(self.keep(
                        config,
                        report,
                        memory,
                        latest.timeline.clone(),
                    ))),
                    Err(error) => {
                        tracing::error!(domain = %config.domain, %error, "dropping a stored report");
                        None
                    }
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
        self.record_with_history(
            config,
            report,
            DomainMemory::default(),
            Arc::from(Vec::new()),
        );
    }

    /// Records a finished probe with what the history knows of the domain, and returns what
    /// was kept (the domain's task holds on to it: one copy for both).
    pub fn record_with_history(
        &self,
        config: &Arc<DomainConfig>,
        report: ProbeReport,
        memory: DomainMemory,
        timeline: Arc<[Change]>,
    ) -> Arc<Latest> {
        let latest = Arc::new(self.keep(config, report, memory, timeline));
        let mut map = self.write();
        if let Some(entry) = map.get_mut(&config.domain)
            && Arc::ptr_eq(&entry.config, config)
        {
            entry.latest = Some(latest.clone());
        }
        latest
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

impl Store {
    /// What the store keeps of a finished probe: the report packed, its summary, its samples
    /// rendered with the domain's labels.
    pub fn keep(
        &self,
        config: &DomainConfig,
        report: ProbeReport,
        memory: DomainMemory,
        timeline: Arc<[Change]>,
    ) -> Latest {
        let labels = metrics::domain_labels(config.domain.display(), &config.labels);
        let samples =
            metrics::render_domain_with_history(&report, &labels, config.interval, &memory);
        let dictionary = match self.sample_dictionary.get() {
            Some(dictionary) => dictionary.clone(),
            None => {
                if samples.len() >= SHORTEST_DICTIONARY / 4 {
                    let _ = self
                        .sample_dictionary
                        .set(metrics::sample_dictionary(&samples));
                }
                Arc::from(Vec::new())
            }
        };
        let samples = match PackedSamples::pack(samples, dictionary) {
            Ok(samples) => samples,
            Err(error) => {
                // Deflating into memory cannot fail; export nothing for the domain if it did.
                tracing::error!(%error, "packing metric lines failed");
                PackedSamples::default()
            }
        };
        let state = Packed::pack(&memory, &self.state_dictionary, SHORTEST_DICTIONARY / 8);
        let memory = Arc::new(DomainMemory {
            state: Default::default(),
            ..memory
        });
        Latest {
            report: Packed::pack(&report, &self.dictionary, SHORTEST_DICTIONARY),
            state,
            started_at: report.started_at,
            summary: ReportSummary::of(&report),
            samples,
            memory,
            timeline,
        }
    }
}
