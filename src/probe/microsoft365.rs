//! The client side of Microsoft 365's JSON Autodiscover: a shared public service that throttles
//! what looks like user enumeration. Each address's answer is cached, queries are spaced by a
//! global rate limit, 429/503 with `Retry-After` pause all queries, and a query that is
//! throttled or finds no slot reuses the last known answer instead of changing a verdict.

use crate::model::facts::{Microsoft365Answer, QuerySource};
use crate::model::step::StepStatus;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// Microsoft's public endpoint.
pub const DEFAULT_URL: &str = "https://outlook.office365.com";
/// How long an answer is used without asking again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(3600);
/// Queries per second across all domains.
pub const DEFAULT_QUERIES_PER_SECOND: f64 = 5.0;
/// Longest pause a `Retry-After` may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Pause after a 429/503 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long the service counts as unreachable after a query failed on the network (no DNS
/// answer, no connection, no TLS): probes in that window do not ask again.
const UNREACHABLE_BACKOFF: Duration = Duration::from_secs(60);
/// Most addresses remembered; past it, expired answers are dropped, then new ones not kept.
const MAX_CACHE_ENTRIES: usize = 200_000;

/// How the exporter asks Microsoft 365.
#[derive(Clone, Debug, PartialEq)]
pub struct Microsoft365Settings {
    /// Base URL, without a trailing slash (`microsoft365.url`).
    pub url: String,
    /// How long an answer is reused without asking again.
    pub cache_ttl: Duration,
    /// Queries per second across all domains.
    pub queries_per_second: f64,
}

impl Default for Microsoft365Settings {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            cache_ttl: DEFAULT_CACHE_TTL,
            queries_per_second: DEFAULT_QUERIES_PER_SECOND,
        }
    }
}

struct CachedAnswer {
    answer: Microsoft365Answer,
    at: Instant,
}

/// Shared by every probe of the process (and kept across reloads).
pub struct Microsoft365Client {
    settings: RwLock<Microsoft365Settings>,
    cache: Mutex<HashMap<String, CachedAnswer>>,
    next_slot: Mutex<Option<Instant>>,
    paused_until: Mutex<Option<Instant>>,
    unreachable: Mutex<Option<(Instant, StepStatus)>>,
    counts: [AtomicU64; QuerySource::ALL.len()],
}

impl std::fmt::Debug for Microsoft365Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Microsoft365Client")
            .field("settings", &self.settings())
            .finish_non_exhaustive()
    }
}

impl Default for Microsoft365Client {
    fn default() -> Self {
        Self::new(Microsoft365Settings::default())
    }
}

impl Microsoft365Client {
    /// A client with `settings`.
    pub fn new(settings: Microsoft365Settings) -> Self {
        Self {
            settings: RwLock::new(settings),
            cache: Mutex::new(HashMap::new()),
            next_slot: Mutex::new(None),
            paused_until: Mutex::new(None),
            unreachable: Mutex::new(None),
            counts: Default::default(),
        }
    }

    /// Applies new settings (a reload); the cache stays.
    pub fn reconfigure(&self, settings: Microsoft365Settings) {
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = settings;
    }

    /// The base URL of the query.
    pub fn base_url(&self) -> String {
        self.settings().url
    }

    fn settings(&self) -> Microsoft365Settings {
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The cached answer for `key` if it is younger than the cache lifetime.
    pub(super) fn fresh(&self, key: &str) -> Option<(Microsoft365Answer, Duration)> {
        let ttl = self.settings().cache_ttl;
        self.known(key).filter(|(_, age)| *age < ttl)
    }

    /// The last answer for `key`, however old.
    pub(super) fn known(&self, key: &str) -> Option<(Microsoft365Answer, Duration)> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(key)
            .map(|entry| (entry.answer.clone(), entry.at.elapsed()))
    }

    /// Remembers an answer the service gave.
    pub(super) fn remember(&self, key: &str, answer: Microsoft365Answer) {
        let ttl = self.settings().cache_ttl;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHE_ENTRIES && !cache.contains_key(key) {
            cache.retain(|_, entry| entry.at.elapsed() < ttl);
            if cache.len() >= MAX_CACHE_ENTRIES {
                return;
            }
        }
        cache.insert(
            key.to_owned(),
            CachedAnswer {
                answer,
                at: Instant::now(),
            },
        );
    }

    /// The service asked us to pause and the pause is not over.
    pub(super) fn paused(&self) -> bool {
        let paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        paused.is_some_and(|until| Instant::now() < until)
    }

    /// The service answered 429/503: pause every query for `Retry-After` (bounded).
    pub(super) fn pause(&self, retry_after_seconds: Option<u64>) {
        let pause = retry_after_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_RETRY_AFTER)
            .min(MAX_RETRY_AFTER);
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *paused = Some(Instant::now() + pause);
    }

    /// The status of the last network failure, while the service counts as unreachable.
    pub(super) fn unreachable(&self) -> Option<StepStatus> {
        let unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        unreachable
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, status)| status)
    }

    /// A query failed on the network with `status`: do not ask again for a while, so a
    /// service that cannot be reached (no DNS, a firewall, an intercepting proxy) costs one
    /// failed query a minute instead of one per probe.
    pub(super) fn mark_unreachable(&self, status: StepStatus) {
        let mut unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *unreachable = Some((Instant::now() + UNREACHABLE_BACKOFF, status));
    }

    /// A query got an HTTP answer: the service is reachable.
    pub(super) fn mark_reachable(&self) {
        let mut unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *unreachable = None;
    }

    /// Waits for a query slot of the global rate limit; `false` when none comes before
    /// `deadline` (the slot is then not taken).
    pub(super) async fn slot(&self, deadline: Instant) -> bool {
        let rate = self.settings().queries_per_second;
        // Config validation keeps the rate within (0, 1000]; this guards the division anyway.
        let spacing = Duration::from_secs_f64(1.0 / rate.clamp(0.001, 1000.0));
        let slot = {
            let mut next = self
                .next_slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            if slot > deadline {
                return false;
            }
            *next = Some(slot + spacing);
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }

    /// Counts how a step got its answer.
    pub(super) fn count(&self, source: QuerySource) {
        if let Some(counter) = self.counts.get(source as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many step runs got their answer each way, since start.
    pub fn counts(&self) -> Vec<(QuerySource, u64)> {
        QuerySource::ALL
            .iter()
            .map(|source| {
                let count = self
                    .counts
                    .get(*source as usize)
                    .map_or(0, |c| c.load(Ordering::Relaxed));
                (*source, count)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(rate: f64) -> Microsoft365Client {
        Microsoft365Client::new(Microsoft365Settings {
            queries_per_second: rate,
            ..Microsoft365Settings::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_by_the_rate_and_refused_past_the_deadline() {
        let client = client(2.0);
        let start = Instant::now();
        let deadline = start + Duration::from_millis(1200);
        assert!(client.slot(deadline).await);
        assert!(client.slot(deadline).await);
        assert!(client.slot(deadline).await);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(!client.slot(deadline).await, "the fourth slot is at 1.5 s");
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_fresh_for_the_ttl_and_known_afterwards() {
        let client = client(5.0);
        let answer = Microsoft365Answer::Unknown {
            status: StepStatus::HttpStatus,
        };
        client.remember("a@b.example", answer.clone());
        assert!(client.fresh("a@b.example").is_some());
        tokio::time::advance(DEFAULT_CACHE_TTL + Duration::from_secs(1)).await;
        assert!(client.fresh("a@b.example").is_none());
        assert_eq!(client.known("a@b.example").map(|(a, _)| a), Some(answer));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_service_is_not_asked_again_for_a_while() {
        let client = client(5.0);
        assert_eq!(client.unreachable(), None);
        client.mark_unreachable(StepStatus::DnsNoRecord);
        assert_eq!(client.unreachable(), Some(StepStatus::DnsNoRecord));
        tokio::time::advance(UNREACHABLE_BACKOFF + Duration::from_secs(1)).await;
        assert_eq!(client.unreachable(), None);
        client.mark_unreachable(StepStatus::Timeout);
        client.mark_reachable();
        assert_eq!(client.unreachable(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_within_bounds() {
        let client = client(5.0);
        assert!(!client.paused());
        client.pause(Some(30));
        assert!(client.paused());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(!client.paused());
        client.pause(Some(u64::MAX));
        tokio::time::advance(MAX_RETRY_AFTER + Duration::from_secs(1)).await;
        assert!(!client.paused());
    }
}
