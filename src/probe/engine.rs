//! The machinery every step shares: one URL (a hop) across all addresses of its host, one
//! address (TCP, TLS, the request), and redirect chains.

use super::kept::KeptConnection;
use super::shared::{SharedKey, lookup_shareable, shareable};
use super::{Prober, StepContext};
use crate::model::address::name_within;
use crate::model::facts::{
    AddressAttempt, BodyKind, ConnectResult, Hop, HopNext, HopOrigin, HostLookup, HttpExchange,
    HttpFailure, HttpMethod, RedirectRefusal, RefusedAddress, url_host,
};
use crate::model::step::{AUTODISCOVER_PATH, StepStatus};
use crate::model::url_parts::{url_path_and_query, url_port};
use crate::net::connect::is_local_resource_error;
use crate::net::http::HttpConnection;
use crate::protocol::classify::{self, AddressResult, HopResult, Request};
use futures_util::future::join_all;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use tokio::time::Instant;

impl Prober {
    /// POSTs to `url` and follows https redirects; returns the status where the chain ends.
    pub(super) async fn follow_chain(
        &self,
        mut url: String,
        mut origin: HopOrigin,
        ctx: &StepContext,
        hops: &mut Vec<Hop>,
    ) -> StepStatus {
        let chain_start = hops.len();
        let mut visited: HashSet<String> = HashSet::new();
        let mut followed = 0usize;
        let status = loop {
            visited.insert(url.to_ascii_lowercase());
            let (hop, result) = self.hop(&url, origin, Request::HttpsPost, ctx).await;
            let next = hop.next.clone();
            hops.push(hop);
            match (result.status, next) {
                (Some(status), _) => break status,
                (None, Some(HopNext::Address { .. })) => break StepStatus::EndpointFound,
                (
                    None,
                    Some(HopNext::Url {
                        url: target,
                        origin: how,
                    }),
                ) => {
                    let refusal = if visited.contains(&target.to_ascii_lowercase()) {
                        Some(RedirectRefusal::Loop(target.clone()))
                    } else if followed >= ctx.hop_budget {
                        Some(RedirectRefusal::TooManyHops)
                    } else {
                        None
                    };
                    if let Some(refusal) = refusal {
                        if let Some(hop) = hops.last_mut() {
                            refuse(hop, refusal);
                        }
                        break StepStatus::RedirectInvalid;
                    }
                    followed += 1;
                    url = target;
                    origin = how;
                }
                (None, None) => break StepStatus::RedirectInvalid,
            }
        };
        backfill(&mut hops[chain_start..], status);
        status
    }

    /// One URL: resolve its host and try every address.
    pub(super) async fn hop(
        &self,
        url: &str,
        origin: HopOrigin,
        request: Request,
        ctx: &StepContext,
    ) -> (Hop, HopResult) {
        let (mut hop, addresses) = self.resolve(url, origin, ctx).await;
        if addresses.is_empty() {
            let result = HopResult {
                status: Some(hop.status),
                next: None,
                refused: hop.redirect_refused.clone(),
            };
            return (hop, result);
        }
        let host = hop.host();
        let attempts = addresses
            .iter()
            .map(|address| self.attempt(url, &host, *address, request, ctx));
        let (attempts, results): (Vec<AddressAttempt>, Vec<AddressResult>) =
            join_all(attempts).await.into_iter().unzip();
        let result = classify::aggregate(&results);
        hop.addresses = attempts;
        hop.status = result.status.unwrap_or(StepStatus::EndpointFound);
        hop.next = result.next.clone();
        hop.redirect_refused = result.refused.clone();
        (hop, result)
    }

    /// The hop of `url` before any connection: its DNS lookup and the socket addresses to try,
    /// without the addresses the policy refuses. When nothing is left to try, the hop's status
    /// says why (no record, DNS error, the step's time is up, every address refused).
    pub(super) async fn resolve(
        &self,
        url: &str,
        origin: HopOrigin,
        ctx: &StepContext,
    ) -> (Hop, Vec<SocketAddr>) {
        let host = url_host(url).unwrap_or_default();
        let port = port_of(url);
        let mut hop = Hop {
            url: url.to_owned(),
            origin,
            lookup: None,
            addresses: Vec::new(),
            status: StepStatus::DnsNoRecord,
            next: None,
            redirect_refused: None,
            refused_addresses: Vec::new(),
        };
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            // The step's budget is spent: no query goes out after its deadline.
            Err(_) if ctx.phase().is_zero() => {
                hop.status = StepStatus::Timeout;
                return (hop, Vec::new());
            }
            Err(_) => {
                let cell = ctx.lookups.cell(&host);
                let lookup = cell
                    .get_or_init(|| self.lookup_host(&host, ctx))
                    .await
                    .clone();
                let ips = lookup.addresses.clone();
                if let Some(status) = lookup.failure_status() {
                    hop.status = status;
                }
                hop.lookup = Some(lookup);
                ips
            }
        };
        let mut addresses = Vec::with_capacity(ips.len());
        for ip in ips {
            match self.policy.refusal(ip) {
                Some(reason) => hop.refused_addresses.push(RefusedAddress {
                    address: ip,
                    reason,
                }),
                None => addresses.push(SocketAddr::new(ip, port)),
            }
        }
        if addresses.is_empty()
            && let Some(first) = hop.refused_addresses.first()
        {
            hop.status = StepStatus::RedirectInvalid;
            hop.redirect_refused = Some(RedirectRefusal::ForbiddenAddress(format!(
                "{host} resolves only to addresses the probe does not connect to ({} is {})",
                first.address,
                first.reason.describe()
            )));
        }
        (hop, addresses)
    }

    /// The addresses of `host`: what another domain's probe received seconds ago for a host
    /// outside the probed domain, or a lookup now.
    async fn lookup_host(&self, host: &str, ctx: &StepContext) -> HostLookup {
        let shareable = !name_within(host, ctx.address.domain().ascii());
        let key = host.to_ascii_lowercase();
        if shareable && let Some(seen) = self.lookups.get(&key) {
            return HostLookup {
                shared: true,
                ..seen
            };
        }
        let lookup = self.dns.lookup_host(host, ctx.phase()).await;
        if shareable && lookup_shareable(&lookup) {
            self.lookups.insert(key, &lookup);
        }
        lookup
    }

    /// One address: TCP, TLS (https), the request, and the fingerprint GET after a 401 without
    /// Exchange's headers.
    pub(super) async fn attempt(
        &self,
        url: &str,
        host: &str,
        address: SocketAddr,
        request: Request,
        ctx: &StepContext,
    ) -> (AddressAttempt, AddressResult) {
        let started = Instant::now();
        // A domain's own names are its own facts (as its host lookups are): only hosts outside
        // it, which other domains' probes also ask, are looked up in and offered to the store.
        let key = if name_within(host, ctx.address.domain().ascii()) {
            None
        } else {
            SharedKey::new(request, host, address, url)
        };
        if let Some(seen) = key.as_ref().and_then(|key| self.shared.get(key)) {
            let mut attempt = seen;
            attempt.shared = true;
            let result = classify::classify_address(
                url,
                request,
                &attempt.connect,
                attempt.tls.as_ref(),
                attempt.http.as_ref(),
            );
            return (attempt, result);
        }
        let path = path_of(url);
        let host_header = host_header(host, address.port(), request);
        let to = Destination {
            host,
            address,
            path: &path,
            host_header: &host_header,
            request,
        };
        // Boxed: these futures hold a TLS handshake and an HTTP exchange, and a hop moves its
        // attempts' futures (one per address) into place; moving them inline cost more copying
        // than the allocation.
        let reused = if request.is_tls() {
            Box::pin(self.attempt_on_kept(&to, ctx)).await
        } else {
            None
        };
        let mut attempt = match reused {
            Some(attempt) => attempt,
            None => Box::pin(self.attempt_on_new(&to, ctx)).await,
        };
        let result = classify::classify_address(
            url,
            request,
            &attempt.connect,
            attempt.tls.as_ref(),
            attempt.http.as_ref(),
        );
        attempt.status = result.status().unwrap_or(StepStatus::EndpointFound);
        attempt.duration_seconds = started.elapsed().as_secs_f64();
        if let Some(key) = key
            && shareable(request, &attempt)
        {
            self.shared.insert(key, &attempt);
        }
        (attempt, result)
    }

    /// The attempt over a new connection; an https connection whose exchanges all completed is
    /// kept open for the next request to the same server.
    async fn attempt_on_new(&self, to: &Destination<'_>, ctx: &StepContext) -> AddressAttempt {
        let started = Instant::now();
        let mut attempt = new_attempt(to.address);
        let (tcp, slot) = match self.connection_slot(ctx).await {
            Err(not_tried) => {
                attempt.connect = not_tried;
                (None, None)
            }
            Ok(slot) => {
                let tcp = self.connect(to.address, ctx, &mut attempt).await;
                if slot.squeezed && attempt.connect == ConnectResult::Timeout {
                    attempt.connect = self.starved();
                }
                (tcp, Some(slot))
            }
        };
        attempt.connect_seconds = started.elapsed().as_secs_f64();
        let Some(tcp) = tcp else {
            return attempt;
        };
        if !to.request.is_tls() {
            self.exchange(tcp, to, ctx, &mut attempt).await;
            return attempt;
        }
        let mut outcome = self.tls.handshake(tcp, to.host, ctx.phase()).await;
        let handshake_at = Instant::now();
        self.complete_chain(&mut outcome, to.host, ctx).await;
        attempt.tls = Some(outcome.facts);
        let Some(stream) = outcome.stream else {
            return attempt;
        };
        let connection = self.exchange(stream, to, ctx, &mut attempt).await;
        if let (Some(connection), Some(slot), Some(tls)) = (connection, slot, &attempt.tls)
            && exchanges_complete(&attempt)
            && !name_within(to.host, ctx.address.domain().ascii())
        {
            let kept = KeptConnection::new(
                connection,
                tls.clone(),
                attempt.connect_seconds,
                slot.process,
                handshake_at,
            );
            self.kept.put(to.host, to.address, kept);
        }
        attempt
    }

    /// The attempt over a connection kept open by an earlier request to the same server, if
    /// one is idle. `None` when there is none, or when the server closed it before answering
    /// (the request then goes out again on a new connection, as any HTTP client does).
    async fn attempt_on_kept(
        &self,
        to: &Destination<'_>,
        ctx: &StepContext,
    ) -> Option<AddressAttempt> {
        let mut kept = self.kept.take(to.host, to.address)?;
        let _slot = self.probe_slot(ctx).await?;
        let mut attempt = new_attempt(to.address);
        attempt.connect = ConnectResult::Connected;
        attempt.connect_seconds = kept.connect_seconds;
        attempt.tls = Some(kept.tls.clone());
        attempt.connection_reused = true;
        self.exchange_on(&mut kept.connection, to, ctx, &mut attempt)
            .await;
        let unanswered = attempt
            .http
            .as_ref()
            .is_none_or(|h| h.status.is_none() && h.failure != Some(HttpFailure::Timeout));
        if unanswered {
            return None;
        }
        if exchanges_complete(&attempt) {
            self.kept.put(to.host, to.address, kept);
        }
        Some(attempt)
    }

    /// TCP to `address` within the phase budget; the result is recorded in `attempt`.
    async fn connect(
        &self,
        address: SocketAddr,
        ctx: &StepContext,
        attempt: &mut AddressAttempt,
    ) -> Option<tokio::net::TcpStream> {
        let (result, tcp) = self.connect_within(address, ctx).await;
        attempt.connect = result;
        tcp
    }

    /// TCP to `address` within the phase budget, nothing after the step's deadline; local
    /// socket failures (EMFILE, ENFILE, ...) are `LocalError`, never the address's fault.
    pub(super) async fn connect_within(
        &self,
        address: SocketAddr,
        ctx: &StepContext,
    ) -> (ConnectResult, Option<tokio::net::TcpStream>) {
        let budget = ctx.phase();
        if budget.is_zero() {
            // The step's time is up: no connection is opened after its deadline.
            return (ConnectResult::Timeout, None);
        }
        match tokio::time::timeout(budget, self.connector.connect(address)).await {
            Err(_) => (ConnectResult::Timeout, None),
            Ok(Err(error)) => {
                let result = if is_local_resource_error(&error) {
                    ConnectResult::LocalError {
                        detail: error.to_string(),
                    }
                } else if error.kind() == std::io::ErrorKind::ConnectionRefused {
                    ConnectResult::Refused
                } else {
                    ConnectResult::Failed {
                        detail: error.to_string(),
                    }
                };
                (result, None)
            }
            Ok(Ok(tcp)) => (ConnectResult::Connected, Some(tcp)),
        }
    }

    /// A connection slot (the probe's and the process's), then TCP to `address`: the
    /// connection budget every connection of a probe goes through. The slot is held as long as
    /// the returned value lives.
    pub(super) async fn open_budgeted(
        &self,
        address: SocketAddr,
        ctx: &StepContext,
    ) -> (
        ConnectResult,
        Option<(tokio::net::TcpStream, super::ConnectionSlot)>,
    ) {
        let slot = match self.connection_slot(ctx).await {
            Ok(slot) => slot,
            Err(not_tried) => return (not_tried, None),
        };
        let (mut result, tcp) = self.connect_within(address, ctx).await;
        if slot.squeezed && result == ConnectResult::Timeout {
            result = self.starved();
        }
        (result, tcp.map(|tcp| (tcp, slot)))
    }

    async fn exchange<S>(
        &self,
        stream: S,
        to: &Destination<'_>,
        ctx: &StepContext,
        attempt: &mut AddressAttempt,
    ) -> Option<HttpConnection>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let method = request_method(to.request);
        let mut connection = match HttpConnection::open(stream, ctx.phase()).await {
            Ok(connection) => connection,
            Err(failure) => {
                attempt.http = Some(HttpExchange::failed(method, failure));
                return None;
            }
        };
        self.exchange_on(&mut connection, to, ctx, attempt).await;
        Some(connection)
    }

    /// The request (and the fingerprint GET after an unidentified 401) over `connection`.
    async fn exchange_on(
        &self,
        connection: &mut HttpConnection,
        to: &Destination<'_>,
        ctx: &StepContext,
        attempt: &mut AddressAttempt,
    ) {
        let (host_header, path) = (to.host_header, to.path);
        let method = request_method(to.request);
        if method == HttpMethod::Get {
            attempt.http = Some(connection.get(host_header, path, ctx.phase()).await);
            return;
        }
        let exchange = connection
            .post_autodiscover(host_header, path, &ctx.address.ascii(), ctx.phase())
            .await;
        // Exchange marks its Autodiscover service with X-*-Enabled headers on an unauthenticated
        // GET: that tells a real Exchange from a web server that merely asks for a password.
        // When the POST's 401 already carries them, the GET would tell nothing more.
        let unidentified = exchange.status == Some(401) && !exchange.looks_like_exchange();
        attempt.http = Some(exchange);
        if unidentified && connection.is_reusable() && !ctx.phase().is_zero() {
            attempt.fingerprint = Some(connection.get(host_header, path, ctx.phase()).await);
        }
    }
}

/// Where an attempt sends its request: the host name (SNI, the certificate check, the key of
/// kept connections), the address, and the request with its path and Host header.
struct Destination<'a> {
    host: &'a str,
    address: SocketAddr,
    path: &'a str,
    host_header: &'a str,
    request: Request,
}

fn request_method(request: Request) -> HttpMethod {
    match request {
        Request::HttpsPost => HttpMethod::Post,
        Request::PlainGet | Request::Microsoft365Get => HttpMethod::Get,
    }
}

/// An attempt on `address` before anything happened.
fn new_attempt(address: SocketAddr) -> AddressAttempt {
    AddressAttempt {
        address,
        connect: ConnectResult::Timeout,
        connect_seconds: 0.0,
        tls: None,
        http: None,
        fingerprint: None,
        status: StepStatus::Timeout,
        duration_seconds: 0.0,
        shared: false,
        connection_reused: false,
    }
}

/// Every exchange of the attempt got a whole answer, so its connection may take another request.
fn exchanges_complete(attempt: &AddressAttempt) -> bool {
    attempt.http.is_some()
        && attempt.exchanges().all(|exchange| {
            exchange.status.is_some()
                && exchange.failure.is_none()
                && exchange.body != BodyKind::TooLarge
        })
}

/// Marks a hop's redirect as refused: the hop and its addresses end there.
pub(super) fn refuse(hop: &mut Hop, refusal: RedirectRefusal) {
    hop.next = None;
    hop.status = StepStatus::RedirectInvalid;
    hop.redirect_refused = Some(refusal);
    for attempt in &mut hop.addresses {
        if attempt.status == StepStatus::EndpointFound {
            attempt.status = StepStatus::RedirectInvalid;
        }
    }
}

/// Hops and addresses that redirected take the status of where the chain ended.
pub(super) fn backfill(hops: &mut [Hop], status: StepStatus) {
    for hop in hops {
        if matches!(hop.next, Some(HopNext::Url { .. })) {
            hop.status = status;
            for attempt in &mut hop.addresses {
                if attempt.status == StepStatus::EndpointFound {
                    attempt.status = status;
                }
            }
        }
    }
}

fn port_of(url: &str) -> u16 {
    url_port(url).unwrap_or(443)
}

fn path_of(url: &str) -> String {
    url_path_and_query(url).unwrap_or_else(|| AUTODISCOVER_PATH.to_owned())
}

fn host_header(host: &str, port: u16, request: Request) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if port == request.default_port() {
        host
    } else {
        format!("{host}:{port}")
    }
}
