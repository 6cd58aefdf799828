//! HTTPS connections kept open for a moment after a request, for the next domain's request to
//! the same host at the same address.
//!
//! Many mailbox domains send their request to one host: every Microsoft 365 domain POSTs to
//! Microsoft's, hosted customers share an SRV target. The answer to a POST names the mailbox, so
//! each domain still sends its own request; what it can take from the previous one is the open
//! connection, as Outlook's HTTP stack does. The TLS facts of such an attempt (chain, judgement,
//! version) are those of the handshake that opened the connection, seconds earlier, for the same
//! host name: the trace says so (`connection_reused`). The HTTP exchange is the domain's own.
//!
//! Bounds: a connection is reused only within `REUSE_FOR` of its handshake and `IDLE_FOR` of
//! its last answer (below any common server keep-alive, so the server rarely closes it under
//! the request); at most `PER_HOST` idle connections per host and address and `CAPACITY` in
//! all, each holding one of the process's connection slots; a connection whose server closed it
//! or that cannot take another request is never kept. A request that fails on a reused
//! connection before any answer is sent again on a new one (`engine`).

use crate::model::facts::TlsFacts;
use crate::net::http::HttpConnection;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// How long after its handshake a connection's TLS facts stand for another domain's attempt:
/// as long as a shared observation.
pub(super) const REUSE_FOR: Duration = super::shared::SHARE_FOR;
/// How long a connection waits idle for the next request: Apache closes idle connections after
/// 5 s by default, nginx after 75 s, IIS after 120 s.
pub(super) const IDLE_FOR: Duration = Duration::from_secs(2);
/// Idle connections kept per host and address.
const PER_HOST: usize = 16;
/// Idle connections kept in all.
const CAPACITY: usize = 32;

/// What identifies a connection's server: the host name sent as SNI (and judged against the
/// certificate) and the address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct KeptKey {
    host: String,
    address: SocketAddr,
}

impl KeptKey {
    fn new(host: &str, address: SocketAddr) -> Self {
        Self {
            host: host.to_ascii_lowercase(),
            address,
        }
    }
}

/// An open HTTPS connection and what its handshake showed.
pub(super) struct KeptConnection {
    /// The connection, ready for a request.
    pub(super) connection: HttpConnection,
    /// The TLS facts of its handshake (after any AIA completion).
    pub(super) tls: TlsFacts,
    /// How long its TCP connect took.
    pub(super) connect_seconds: f64,
    /// The process's connection slot, held as long as the connection is open.
    _permit: OwnedSemaphorePermit,
    handshake_at: Instant,
    idle_since: Instant,
}

/// How long connections are kept.
#[derive(Clone, Copy, Debug)]
struct Windows {
    reuse_for: Duration,
    idle_for: Duration,
}

impl KeptConnection {
    /// A connection whose handshake completed at `handshake_at`.
    pub(super) fn new(
        connection: HttpConnection,
        tls: TlsFacts,
        connect_seconds: f64,
        permit: OwnedSemaphorePermit,
        handshake_at: Instant,
    ) -> Self {
        Self {
            connection,
            tls,
            connect_seconds,
            _permit: permit,
            handshake_at,
            idle_since: handshake_at,
        }
    }

    fn fresh(&self, now: Instant, windows: Windows) -> bool {
        now.saturating_duration_since(self.handshake_at) < windows.reuse_for
            && now.saturating_duration_since(self.idle_since) < windows.idle_for
    }
}

/// The idle connections, by server.
pub(super) struct KeptConnections {
    idle: Mutex<HashMap<KeptKey, Vec<KeptConnection>>>,
    windows: Windows,
}

impl Default for KeptConnections {
    fn default() -> Self {
        Self::new(REUSE_FOR, IDLE_FOR)
    }
}

impl KeptConnections {
    /// Connections reused within `reuse_for` of their handshake and `idle_for` of their last
    /// answer.
    pub(super) fn new(reuse_for: Duration, idle_for: Duration) -> Self {
        Self {
            idle: Mutex::default(),
            windows: Windows {
                reuse_for,
                idle_for,
            },
        }
    }

    /// An idle connection to `host` at `address` that may take a request now, if any.
    pub(super) fn take(&self, host: &str, address: SocketAddr) -> Option<KeptConnection> {
        let key = KeptKey::new(host, address);
        let now = Instant::now();
        loop {
            let candidate = {
                let mut idle = self.lock();
                let list = idle.get_mut(&key)?;
                let candidate = list.pop();
                if list.is_empty() {
                    idle.remove(&key);
                }
                candidate?
            };
            // Checked outside the lock: it polls the connection once.
            let mut candidate = candidate;
            if candidate.fresh(now, self.windows) && candidate.connection.is_open_now() {
                return Some(candidate);
            }
        }
    }

    /// Keeps `kept` for the next request to its server, unless it is closed, stale, or the
    /// pool is full.
    pub(super) fn put(&self, host: &str, address: SocketAddr, mut kept: KeptConnection) {
        let now = Instant::now();
        kept.idle_since = now;
        if !kept.fresh(now, self.windows) || !kept.connection.is_open_now() {
            return;
        }
        let key = KeptKey::new(host, address);
        let windows = self.windows;
        let mut idle = self.lock();
        let mut total: usize = idle.values().map(Vec::len).sum();
        if total >= CAPACITY {
            idle.retain(|_, list| {
                list.retain(|k| k.fresh(now, windows));
                !list.is_empty()
            });
            total = idle.values().map(Vec::len).sum();
        }
        let list = idle.entry(key.clone()).or_default();
        list.retain(|k| k.fresh(now, windows));
        if total < CAPACITY && list.len() < PER_HOST {
            list.push(kept);
        } else if list.is_empty() {
            idle.remove(&key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeptKey, Vec<KeptConnection>>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
