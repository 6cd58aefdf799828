//! `/metrics` with `Accept-Encoding: gzip`, without compressing 39 MB per scrape.
//!
//! The per-domain families are kept as a raw-deflate stream that ends with a sync flush, per
//! exposition format, rebuilt off the request path by [`refresh_forever`] when the store changed:
//! at most every [`MIN_REFRESH`], and never more often than every ten build times (so the
//! rebuild stays under a tenth of a core whatever the domain count). A scrape takes the latest
//! stream as it is, deflates the exporter's own metrics (fresh at every scrape; with `# EOF` last
//! in OpenMetrics) and sends both as one gzip member ([`crate::render::gzip`]). So a probe result
//! reaches the gzip exposition at most `max(5 s, 10 × build time)` plus one build time after it
//! finished (about 6 s at 10,000 domains), and a scrape never waits for a probe or a rebuild,
//! except the very first scrape of a format, which builds its stream.

use super::Shared;
use super::process::release_free_memory;
use super::store::Store;
use crate::render::gzip::{self, DeflatePart, DeflateWriter};
use crate::render::metrics::{self, Format, IoText};
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shortest time between two rebuilds of a format's stream.
pub const MIN_REFRESH: Duration = Duration::from_secs(5);
/// A format nobody asked for in this long is no longer rebuilt (until it is asked for again).
const WANTED_FOR: Duration = Duration::from_secs(600);
/// How often the refresher looks at the store.
const TICK: Duration = Duration::from_secs(1);
/// How often freed memory is handed back to the kernel (see [`release_free_memory`]).
const TRIM_EVERY: u32 = 10;

/// The deflated per-domain families of one format.
#[derive(Debug)]
pub struct DeflatedDomains {
    /// The stream, ending with a sync flush.
    pub part: DeflatePart,
    /// The store generation it shows.
    pub generation: u64,
    /// When it was built.
    pub built_at: Instant,
    /// How long building it took.
    pub build_time: Duration,
}

#[derive(Debug, Default)]
struct Slot {
    latest: Option<Arc<DeflatedDomains>>,
    wanted_at: Option<Instant>,
}

/// The cached streams, one per format.
#[derive(Debug, Default)]
pub struct GzipExposition {
    slots: [Mutex<Slot>; 2],
}

impl GzipExposition {
    fn slot(&self, format: Format) -> std::sync::MutexGuard<'_, Slot> {
        let index = match format {
            Format::Classic => 0,
            Format::OpenMetrics => 1,
        };
        self.slots[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The latest stream of `format`, marking the format as wanted.
    fn latest(&self, format: Format) -> Option<Arc<DeflatedDomains>> {
        let mut slot = self.slot(format);
        slot.wanted_at = Some(Instant::now());
        slot.latest.clone()
    }

    fn store(&self, format: Format, built: Arc<DeflatedDomains>) {
        let mut slot = self.slot(format);
        // Two builds may race (a first scrape and the refresher): keep the newer one.
        if slot
            .latest
            .as_ref()
            .is_none_or(|old| old.generation <= built.generation)
        {
            slot.latest = Some(built);
        }
    }

    /// Whether `format` is due for a rebuild: wanted lately, the store changed since its stream
    /// was built, and long enough ago.
    fn due(&self, format: Format, generation: u64, now: Instant) -> bool {
        let slot = self.slot(format);
        let wanted = slot
            .wanted_at
            .is_some_and(|at| now.duration_since(at) < WANTED_FOR);
        match &slot.latest {
            _ if !wanted => false,
            None => true,
            Some(latest) => {
                latest.generation != generation
                    && now.duration_since(latest.built_at)
                        >= MIN_REFRESH.max(latest.build_time * 10)
            }
        }
    }

    /// The gzip body of `/metrics` in `format`: the cached per-domain stream (built now when
    /// there is none yet) and the exporter's own metrics, fresh.
    pub async fn body(&self, shared: &Arc<Shared>, format: Format) -> std::io::Result<Vec<u8>> {
        let domains = match self.latest(format) {
            Some(latest) => latest,
            None => {
                let building = shared.clone();
                let built = tokio::task::spawn_blocking(move || build(&building.store, format, 0))
                    .await
                    .map_err(std::io::Error::other)??;
                let built = Arc::new(built);
                self.store(format, built.clone());
                built
            }
        };
        let mut text = String::new();
        shared.metrics.encode(&mut text, format);
        let mut own_part = DeflateWriter::new();
        own_part.write_all(text.as_bytes())?;
        let own_part = own_part.finished()?;
        Ok(gzip::member(&domains.part, &own_part))
    }
}

/// Deflates the per-domain families of the store's current content. Each domain is unpacked
/// once and its lines go to one compressor per family; the families' streams (each ends with a
/// sync flush, none refers to another) are then put one after the other, in exposition order.
/// `size_hint` is the expected compressed size (the previous build's), to allocate it once.
pub fn build(store: &Store, format: Format, size_hint: usize) -> std::io::Result<DeflatedDomains> {
    let started = Instant::now();
    let (generation, latest) = store.snapshot();
    let mut sinks = Vec::with_capacity(metrics::FAMILY_COUNT);
    for index in 0..metrics::FAMILY_COUNT {
        let mut writer = DeflateWriter::new();
        writer.reserve((size_hint + size_hint / 8) / metrics::FAMILY_COUNT);
        let mut sink = IoText::new(BufWriter::with_capacity(16 * 1024, writer));
        // An error is kept by the sink and reported by into_inner below.
        let _ = metrics::write_family_header(&mut sink, format, index);
        sinks.push(sink);
    }
    for kept in &latest {
        let samples = kept.samples.unpack()?;
        for (index, sink) in sinks.iter_mut().enumerate() {
            if metrics::write_family_lines(sink, &samples, index).is_err() {
                // The sink keeps the I/O error; into_inner below reports it.
                break;
            }
        }
    }
    let mut parts = Vec::with_capacity(sinks.len());
    for sink in sinks {
        let writer = sink
            .into_inner()?
            .into_inner()
            .map_err(|e| e.into_error())?;
        parts.push(writer.sync_flushed()?);
    }
    Ok(DeflatedDomains {
        part: gzip::concat(parts),
        generation,
        built_at: Instant::now(),
        build_time: started.elapsed(),
    })
}

/// The plain-text `/metrics` body in `format`: the per-domain families as of now (the cached
/// stream when it is current, else a fresh one, kept for gzip scrapes too) and the exporter's
/// own metrics.
pub async fn plain(shared: &Arc<Shared>, format: Format) -> std::io::Result<String> {
    let cache = &shared.exposition;
    let current = cache
        .latest(format)
        .filter(|l| l.generation == shared.store.generation());
    let domains = match current {
        Some(domains) => domains,
        None => {
            let building = shared.clone();
            let built = tokio::task::spawn_blocking(move || build(&building.store, format, 0))
                .await
                .map_err(std::io::Error::other)??;
            let built = Arc::new(built);
            cache.store(format, built.clone());
            built
        }
    };
    let text = gzip::inflate_flushed(&domains.part.bytes)?;
    let mut text = String::from_utf8(text).map_err(std::io::Error::other)?;
    shared.metrics.encode(&mut text, format);
    Ok(text)
}

/// Rebuilds the wanted formats' streams when they are due, until the task is aborted.
pub async fn refresh_forever(shared: Arc<Shared>) {
    let cache = &shared.exposition;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        tick.tick().await;
        ticks = ticks.wrapping_add(1);
        for format in [Format::Classic, Format::OpenMetrics] {
            if !cache.due(format, shared.store.generation(), Instant::now()) {
                continue;
            }
            let hint = cache
                .slot(format)
                .latest
                .as_ref()
                .map_or(0, |l| l.part.bytes.len());
            let building = shared.clone();
            match tokio::task::spawn_blocking(move || build(&building.store, format, hint)).await {
                Ok(Ok(built)) => {
                    tracing::debug!(
                        ?format,
                        bytes = built.part.bytes.len(),
                        seconds = built.build_time.as_secs_f64(),
                        "gzip exposition rebuilt"
                    );
                    cache.store(format, Arc::new(built));
                }
                Ok(Err(error)) => tracing::warn!(%error, "rebuilding the gzip exposition failed"),
                Err(error) => tracing::warn!(%error, "the gzip exposition rebuild panicked"),
            }
        }
        if ticks.is_multiple_of(TRIM_EVERY) {
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }
}
