//! Attempts shared between probes for a few seconds.
//!
//! Many domains lead to the same server: every Microsoft 365 mailbox domain POSTs to Microsoft's
//! host, hosted customers share an SRV target, cloud domains' `http://autodiscover.D` redirects
//! to one Exchange Online host. Within seconds, the same request to the same host name at the
//! same address gets the same TLS handshake, chain, certificate judgement and answer: the probe
//! reuses what another probe observed there instead of repeating the handshake, and flags the
//! attempt (`shared: true` in the trace). Every judgement stays per domain: the key holds the
//! host name that was sent as SNI and checked against the certificate, the address and port,
//! the request and its path, and the classification of the answer is redone for the URL the
//! domain asked for.
//!
//! A domain's own names (the bare domain, its `autodiscover` host, anything under it) are never
//! shared, in either direction: each of its probes observes them itself, as it looks them up
//! itself. Only hosts other domains' probes also ask are worth sharing.
//!
//! Only answers that cannot depend on the mailbox address are shared: a POST (whose body names
//! the address) only when the server asked for credentials (401) or has no such resource (404);
//! a GET (the same for every domain) with any answer; nothing that failed to connect or timed
//! out (the next probe tries again). Microsoft 365's JSON query names the address in its path,
//! so it is never shared (its own client caches answers per address).
//!
//! Host lookups are shared the same way, as a client's DNS cache answers them: the A and AAAA
//! answers for a name outside the probed domain (the domain's own names are asked by its probes
//! alone), when a server answered both questions (records, no such name, no data, or a refusal:
//! never a timeout or an unreachable resolver).

use crate::model::facts::{AddressAttempt, DnsAnswer, HostLookup, TlsHandshake};
use crate::model::url_parts::url_path_and_query;
use crate::protocol::classify::Request;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long an observation is reused.
pub(super) const SHARE_FOR: Duration = Duration::from_secs(10);
/// Most observations kept at once.
const CAPACITY: usize = 4096;

/// What makes two attempts the same.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct SharedKey {
    request: Request,
    host: String,
    address: SocketAddr,
    path: String,
}

impl SharedKey {
    /// The key of a request to `url` at `address`; `None` for requests that are never shared.
    pub(super) fn new(
        request: Request,
        host: &str,
        address: SocketAddr,
        url: &str,
    ) -> Option<Self> {
        if request == Request::Microsoft365Get {
            return None;
        }
        let path = url_path_and_query(url)?;
        Some(Self {
            request,
            host: host.to_ascii_lowercase(),
            address,
            path,
        })
    }
}

/// Whether an attempt's facts hold for any domain that sends the same request.
pub(super) fn shareable(request: Request, attempt: &AddressAttempt) -> bool {
    let Some(status) = attempt.http.as_ref().and_then(|h| h.status) else {
        return false;
    };
    let tls_ok = match (&attempt.tls, request.is_tls()) {
        (Some(tls), true) => tls.handshake == TlsHandshake::Established,
        (None, false) => true,
        _ => false,
    };
    tls_ok
        && match request {
            Request::HttpsPost => matches!(status, 401 | 404),
            Request::PlainGet => true,
            Request::Microsoft365Get => false,
        }
}

/// Observations by key, each with when it was made; a copy is handed out for `SHARE_FOR`.
#[derive(Debug)]
pub(super) struct Recent<K, V> {
    seen: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
        }
    }
}

/// Attempts, by what makes two attempts the same.
pub(super) type SharedAttempts = Recent<SharedKey, AddressAttempt>;
/// Host lookups, by lower-case name.
pub(super) type SharedLookups = Recent<String, HostLookup>;

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    /// A copy of a fresh observation for `key`.
    pub(super) fn get(&self, key: &K) -> Option<V> {
        let seen = self.lock();
        let (at, value) = seen.get(key)?;
        (at.elapsed() < SHARE_FOR).then(|| value.clone())
    }

    /// Keeps an observation; when full, forgets the stale ones first, and keeps nothing new
    /// while every entry is fresh.
    pub(super) fn insert(&self, key: K, value: &V) {
        let mut seen = self.lock();
        if seen.len() >= CAPACITY && !seen.contains_key(&key) {
            seen.retain(|_, (at, _)| at.elapsed() < SHARE_FOR);
            if seen.len() >= CAPACITY {
                return;
            }
        }
        seen.insert(key, (Instant::now(), value.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a server answered both questions of a lookup.
pub(super) fn lookup_shareable(lookup: &HostLookup) -> bool {
    let answered = |answer: &DnsAnswer| {
        matches!(
            answer,
            DnsAnswer::Records { .. }
                | DnsAnswer::NxDomain
                | DnsAnswer::NoData
                | DnsAnswer::ServFail
                | DnsAnswer::Refused
        )
    };
    answered(&lookup.a) && answered(&lookup.aaaa)
}
