//! Background probing: one task per domain (so a domain is never probed twice at once), a
//! semaphore bounding how many probes run together, jittered intervals.

use super::Shared;
use crate::config::DomainConfig;
use crate::diagnose;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// First probes are spread over at most this long after a start or reload...
const STARTUP_SPREAD: Duration = Duration::from_secs(10);
/// ...and over this much per domain below that: a handful of domains start at once, a thousand
/// spread over the whole window.
const SPREAD_PER_DOMAIN: Duration = Duration::from_millis(10);

/// The running probe tasks.
#[derive(Debug, Default)]
pub struct Scheduler {
    tasks: HashMap<String, (Arc<DomainConfig>, JoinHandle<()>)>,
}

impl Scheduler {
    /// Makes the running tasks match `domains`: removed domains stop, new or changed ones start.
    pub fn apply(&mut self, shared: &Arc<Shared>, domains: &[Arc<DomainConfig>]) {
        let wanted: HashMap<&str, &Arc<DomainConfig>> =
            domains.iter().map(|d| (d.domain.ascii(), d)).collect();
        self.tasks.retain(|domain, (config, handle)| {
            let keep = wanted
                .get(domain.as_str())
                .is_some_and(|w| Arc::ptr_eq(w, config));
            if !keep {
                handle.abort();
            }
            keep
        });
        let count = u32::try_from(domains.len()).unwrap_or(u32::MAX);
        let spread = STARTUP_SPREAD.min(SPREAD_PER_DOMAIN.saturating_mul(count));
        for config in domains {
            if self.tasks.contains_key(config.domain.ascii()) {
                continue;
            }
            let handle = tokio::spawn(probe_forever(shared.clone(), config.clone(), spread));
            self.tasks
                .insert(config.domain.ascii().to_owned(), (config.clone(), handle));
        }
    }

    /// Stops every task.
    pub fn stop(&mut self) {
        for (_, (_, handle)) in self.tasks.drain() {
            handle.abort();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn probe_forever(shared: Arc<Shared>, config: Arc<DomainConfig>, spread: Duration) {
    let mut jitter = Jitter::seeded(config.domain.ascii());
    let mut delay = jitter.within(spread.min(config.interval));
    loop {
        tokio::time::sleep(delay).await;
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
        shared.metrics.probe_finished(report.outcome);
        shared.store.record(&config, report);
        // Probes of one domain drift apart by up to ±10 % so thousands of domains spread out.
        delay = jitter.around(config.interval);
    }
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
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("A.example"), fnv1a("a.example"));
    }
}
