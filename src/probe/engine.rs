//! The machinery every step shares: one URL (a hop) across all addresses of its host, one
//! address (TCP, TLS, the request), and redirect chains.

use super::shared::{SharedKey, shareable};
use super::{Prober, StepContext};
use crate::model::facts::{
    AddressAttempt, ConnectResult, Hop, HopNext, HopOrigin, HostLookup, HttpExchange, HttpMethod,
    RedirectRefusal, url_host,
};
use crate::model::step::{AUTODISCOVER_PATH, StepStatus};
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
        if let Some(status) = hop.lookup.as_ref().and_then(HostLookup::failure_status) {
            hop.status = status;
            let result = HopResult {
                status: Some(status),
                next: None,
                refused: None,
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

    /// The hop of `url` before any connection: its DNS lookup and the socket addresses to try.
    pub(super) async fn resolve(
        &self,
        url: &str,
        origin: HopOrigin,
        ctx: &StepContext,
    ) -> (Hop, Vec<SocketAddr>) {
        let host = url_host(url).unwrap_or_default();
        let port = port_of(url);
        let (lookup, ips) = match host.parse::<IpAddr>() {
            Ok(ip) => (None, vec![ip]),
            Err(_) => {
                let cell = ctx.lookups.cell(&host);
                let lookup = cell
                    .get_or_init(|| self.dns.lookup_host(&host, ctx.phase()))
                    .await
                    .clone();
                let ips = lookup.addresses.clone();
                (Some(lookup), ips)
            }
        };
        let hop = Hop {
            url: url.to_owned(),
            origin,
            lookup,
            addresses: Vec::new(),
            status: StepStatus::DnsNoRecord,
            next: None,
            redirect_refused: None,
        };
        let addresses = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        (hop, addresses)
    }

    /// One address: TCP, TLS (https), the request, and the fingerprint GET after a 401.
    pub(super) async fn attempt(
        &self,
        url: &str,
        host: &str,
        address: SocketAddr,
        request: Request,
        ctx: &StepContext,
    ) -> (AddressAttempt, AddressResult) {
        let started = Instant::now();
        let mut attempt = AddressAttempt {
            address,
            connect: ConnectResult::Timeout,
            connect_seconds: 0.0,
            tls: None,
            http: None,
            fingerprint: None,
            status: StepStatus::Timeout,
            duration_seconds: 0.0,
            shared: false,
        };
        let key = SharedKey::new(request, host, address, url);
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
        let connected = tokio::time::timeout(ctx.phase(), self.connector.connect(address)).await;
        attempt.connect_seconds = started.elapsed().as_secs_f64();
        let tcp = match connected {
            Err(_) => None,
            Ok(Err(error)) => {
                attempt.connect = if error.kind() == std::io::ErrorKind::ConnectionRefused {
                    ConnectResult::Refused
                } else {
                    ConnectResult::Failed {
                        detail: error.to_string(),
                    }
                };
                None
            }
            Ok(Ok(tcp)) => {
                attempt.connect = ConnectResult::Connected;
                Some(tcp)
            }
        };
        if let Some(tcp) = tcp {
            let path = path_of(url);
            let host_header = host_header(host, address.port(), request);
            if request.is_tls() {
                let mut outcome = self.tls.handshake(tcp, host, ctx.phase()).await;
                self.complete_chain(&mut outcome, host, ctx).await;
                attempt.tls = Some(outcome.facts);
                if let Some(stream) = outcome.stream {
                    self.exchange(stream, &host_header, &path, request, ctx, &mut attempt)
                        .await;
                }
            } else {
                self.exchange(tcp, &host_header, &path, request, ctx, &mut attempt)
                    .await;
            }
        }
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

    async fn exchange<S>(
        &self,
        stream: S,
        host_header: &str,
        path: &str,
        request: Request,
        ctx: &StepContext,
        attempt: &mut AddressAttempt,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let method = match request {
            Request::HttpsPost => HttpMethod::Post,
            Request::PlainGet | Request::Microsoft365Get => HttpMethod::Get,
        };
        let mut connection = match HttpConnection::open(stream, ctx.phase()).await {
            Ok(connection) => connection,
            Err(failure) => {
                attempt.http = Some(HttpExchange::failed(method, failure));
                return;
            }
        };
        if method == HttpMethod::Get {
            attempt.http = Some(connection.get(host_header, path, ctx.phase()).await);
            return;
        }
        let exchange = connection
            .post_autodiscover(host_header, path, &ctx.address.ascii(), ctx.phase())
            .await;
        let challenged = exchange.status == Some(401);
        attempt.http = Some(exchange);
        // Exchange marks its Autodiscover service with X-*-Enabled headers on an unauthenticated
        // GET: that tells a real Exchange from a web server that merely asks for a password.
        if challenged && connection.is_reusable() && !ctx.phase().is_zero() {
            attempt.fingerprint = Some(connection.get(host_header, path, ctx.phase()).await);
        }
    }
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
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(443)
}

fn path_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| AUTODISCOVER_PATH.to_owned(),
        |u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
    )
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
