//! Background probing: one task per domain (so a domain is never probed twice at once), a
//! semaphore bounding how many probes run together, jittered intervals.

use super::Shared;
use super::history::{Entry, TIMELINE_LENGTH};
use crate::config::DomainConfig;
use crate::diagnose::{self, changes};
use crate::model::history::{Change, ChangeKind, DomainMemory};
use crate::model::report::ProbeReport;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// First probes are spread over at most this long after a start or reload...
const STARTUP_SPREAD: Duration = Duration::from_secs(10);
/// ...and over this much per domain below that: a handful of domains start at once, a thousand
/// spread over the whole window.
const SPREAD_PER_DOMAIN: Duration = Duration::from_millis(10);

/// The running probe tasks.
#[derive(Debug, Default)]
pub struct Scheduler {
    tasks: HashMap<String, Task>,
}

#[derive(Debug)]
struct Task {
    config: Arc<DomainConfig>,
    handle: JoinHandle<()>,
    now: Arc<Notify>,
}

impl Scheduler {
    /// Makes the running tasks match `domains`: removed domains stop, new or changed ones start.
    pub fn apply(&mut self, shared: &Arc<Shared>, domains: &[Arc<DomainConfig>]) {
        let wanted: HashMap<&str, &Arc<DomainConfig>> =
            domains.iter().map(|d| (d.domain.ascii(), d)).collect();
        self.tasks.retain(|domain, task| {
            let keep = wanted
                .get(domain.as_str())
                .is_some_and(|w| Arc::ptr_eq(w, &task.config));
            if !keep {
                task.handle.abort();
            }
            keep
        });
        let count = u32::try_from(domains.len()).unwrap_or(u32::MAX);
        let spread = STARTUP_SPREAD.min(SPREAD_PER_DOMAIN.saturating_mul(count));
        for config in domains {
            if self.tasks.contains_key(config.domain.ascii()) {
                continue;
            }
            let now = Arc::new(Notify::new());
            let handle = tokio::spawn(probe_forever(
                shared.clone(),
                config.clone(),
                now.clone(),
                spread,
            ));
            self.tasks.insert(
                config.domain.ascii().to_owned(),
                Task {
                    config: config.clone(),
                    handle,
                    now,
                },
            );
        }
    }

    /// Asks the task of `domain` to probe now instead of at its next turn; false when the
    /// domain has no task. The probe is the task's own, so a domain is still never probed
    /// twice at once and its history stays in order.
    pub fn probe_now(&self, domain: &str) -> bool {
        match self.tasks.get(domain) {
            Some(task) => {
                task.now.notify_one();
                true
            }
            None => false,
        }
    }

    /// Stops every task.
    pub fn stop(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.handle.abort();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn probe_forever(
    shared: Arc<Shared>,
    config: Arc<DomainConfig>,
    now: Arc<Notify>,
    spread: Duration,
) {
    let mut jitter = Jitter::seeded(config.domain.ascii());
    let mut delay = jitter.within(spread.min(config.interval));
    // What the domain looked like after its previous probe: in the store after a reload, in
    // the history after a restart.
    let mut previous: Option<(DomainMemory, Vec<Change>)> =
        match shared.store.get(&config.domain).and_then(|e| e.latest) {
            Some(latest) => Some((latest.memory.clone(), latest.timeline.clone())),
            None => shared.history.load(config.domain.ascii()).await,
        };
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = now.notified() => {}
        }
        let semaphore = shared.semaphore();
        let Ok(permit) = semaphore.acquire_owned().await else {
            return;
        };
        let prober = shared.prober();
        let mut report = prober.probe(&config.address, &config.probe).await;
        report.findings = diagnose::explain(&report, &config.expect);
        drop(permit);
        tracing::debug!(
            domain = %config.domain,
            outcome = %report.outcome,
            duration_seconds = report.duration_seconds,
            "probe finished"
        );
        let (memory, timeline) = remember(&shared, &config, &mut report, previous.take()).await;
        shared.metrics.probe_finished(report.outcome);
        shared
            .store
            .record_with_history(&config, report, memory.clone(), timeline.clone());
        previous = Some((memory, timeline));
        // Probes of one domain drift apart by up to ±10 % so thousands of domains spread out.
        delay = jitter.around(config.interval);
    }
}

/// Compares the probe with the previous one: logs a verdict change, adds the delegation
/// regression finding, queues the changes for the history. Returns the new memory and the
/// latest changes (oldest first).
async fn remember(
    shared: &Shared,
    config: &DomainConfig,
    report: &mut ProbeReport,
    previous: Option<(DomainMemory, Vec<Change>)>,
) -> (DomainMemory, Vec<Change>) {
    let at = report.finished_at().round() as i64;
    let (old_memory, mut timeline) = match previous {
        Some((memory, timeline)) => (Some(memory), timeline),
        None => (None, Vec::new()),
    };
    let (memory, found) = changes::advance(old_memory.as_ref(), report, at);
    if let Some(finding) = changes::regression_finding(&memory, report, at) {
        report.findings.push(finding);
        report.findings.sort_by_key(|f| f.severity);
    }
    for change in &found {
        match change.kind {
            ChangeKind::Verdict => tracing::info!(
                domain = %config.domain,
                before = %change.before,
                after = %change.after,
                "verdict changed"
            ),
            ChangeKind::Nameservers => tracing::info!(
                domain = %config.domain,
                before = %change.before,
                after = %change.after,
                "name servers changed"
            ),
            _ => tracing::debug!(domain = %config.domain, change = %change.describe(), "changed"),
        }
    }
    let unchanged = old_memory.as_ref() == Some(&memory);
    if !unchanged {
        shared
            .history
            .record(Entry {
                domain: config.domain.ascii().to_owned(),
                memory: memory.clone(),
                changes: found.clone(),
            })
            .await;
    }
    timeline.extend(found);
    if timeline.len() > TIMELINE_LENGTH {
        timeline.drain(..timeline.len() - TIMELINE_LENGTH);
    }
    (memory, timeline)
}

/// A small xorshift generator: jitter needs spread, not cryptographic randomness.
struct Jitter(u64);

impl Jitter {
    fn seeded(domain: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        Self((fnv1a(domain) ^ nanos) | 1)
    }

    fn next_fraction(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn within(&mut self, span: Duration) -> Duration {
        span.mul_f64(self.next_fraction())
    }

    fn around(&mut self, interval: Duration) -> Duration {
        interval.mul_f64(0.9 + 0.2 * self.next_fraction())
    }
}

/// FNV-1a 64 of the lower-case text (also the `--shard` hash).
pub fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.to_ascii_lowercase().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_bounds() {
        let mut jitter = Jitter::seeded("a.example");
        for _ in 0..1000 {
            let d = jitter.around(Duration::from_secs(100));
            assert!(d >= Duration::from_secs(90) && d <= Duration::from_secs(110));
            assert!(jitter.within(Duration::from_secs(10)) <= Duration::from_secs(10));
        }
    }

    #[test]
    fn fnv_is_stable() {
        // FNV-1a 64 test vectors (offset basis, "a", "foobar") and two domains: this hash decides
        // which replica probes a domain under --shard, so it must never change.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a("companyb.example"), 0x6304_4a05_2783_d4b2);
        assert_eq!(fnv1a("xn--mnchen-3ya.example"), 0x6bb9_805c_70b0_e168);
        assert_eq!(fnv1a("A.example"), fnv1a("a.example"));
    }
}
