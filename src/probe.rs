//! Runs one probe: the four steps for an address (concurrently, each within its own budget),
//! every address of every host, redirect chains, and `redirectAddr` restarts.

use crate::autodiscover::classify::{self, AddressResult, Request};
use crate::autodiscover::facts::{
    AddressAttempt, ConnectResult, Hop, HopNext, HopOrigin, HostLookup, HttpExchange, StepTrace,
};
use crate::autodiscover::redirect::{self, MAX_HOPS, RedirectRefusal};
use crate::autodiscover::srv;
use crate::autodiscover::step::{StepId, StepStatus};
use crate::autodiscover::verdict::{self, Discovery};
use crate::findings::{self, Expectations};
use crate::net::connect::Connector;
use crate::net::dns::Dns;
use crate::net::http::HttpConnection;
use crate::net::tls::{TlsTrust, unix_now};
use crate::report::{ProbeReport, RedirectHop, SrvSummary};
use futures_util::future::join_all;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How one probe runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeOptions {
    /// Budget of the whole probe.
    pub timeout: Duration,
    /// Budget of one step.
    pub step_timeout: Duration,
    /// Budget of one network phase (DNS query, connect, TLS, HTTP response).
    pub phase_timeout: Duration,
    /// The steps Outlook is allowed to use; the others report `excluded`.
    pub steps: Vec<StepId>,
    /// What the admin expects to see.
    pub expect: Expectations,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            step_timeout: Duration::from_secs(15),
            phase_timeout: Duration::from_secs(5),
            steps: StepId::ALL.to_vec(),
            expect: Expectations::default(),
        }
    }
}

/// Gathers facts with a resolver, a trust store and a way to open sockets.
#[derive(Clone)]
pub struct Prober {
    dns: Dns,
    tls: TlsTrust,
    connector: Arc<dyn Connector>,
}

/// Where a step must stop, and for which address it asks.
#[derive(Clone)]
struct StepContext {
    address: String,
    deadline: Instant,
    phase_timeout: Duration,
    hop_budget: usize,
}

impl StepContext {
    fn phase(&self) -> Duration {
        self.phase_timeout
            .min(self.deadline.saturating_duration_since(Instant::now()))
    }
}

impl Prober {
    /// A prober.
    pub fn new(dns: Dns, tls: TlsTrust, connector: Arc<dyn Connector>) -> Self {
        Self {
            dns,
            tls,
            connector,
        }
    }

    /// Probes `address` (`local@domain`).
    pub async fn probe(&self, address: &str, options: &ProbeOptions) -> ProbeReport {
        let started = Instant::now();
        let started_unix = unix_now();
        let deadline = started + options.timeout;
        let mut visited_addresses: HashSet<String> = HashSet::new();
        visited_addresses.insert(address.to_ascii_lowercase());
        let mut redirects: Vec<RedirectHop> = Vec::new();
        let mut discoveries = vec![self.discover(address, options, deadline, MAX_HOPS).await];
        while let Some(last) = discoveries.last_mut() {
            let Some((step_index, new_address)) = verdict::pending_restart(last) else {
                break;
            };
            let step = &mut last.steps[step_index];
            let from = last.address.clone();
            let refusal = if visited_addresses.contains(&new_address.to_ascii_lowercase()) {
                Some(format!(
                    "redirectAddr loop: {new_address} was already discovered"
                ))
            } else if redirects.len() + 1 > MAX_HOPS {
                Some(RedirectRefusal::TooManyHops.to_string())
            } else {
                None
            };
            if let Some(reason) = refusal {
                mark_refused(step, reason);
                continue;
            }
            redirects.push(RedirectHop::Address {
                step: step.step,
                from,
                to: new_address.clone(),
            });
            visited_addresses.insert(new_address.to_ascii_lowercase());
            let budget = MAX_HOPS.saturating_sub(redirects.len());
            let next = self.discover(&new_address, options, deadline, budget).await;
            discoveries.push(next);
        }
        for discovery in &discoveries {
            for step in &discovery.steps {
                for hop in &step.hops {
                    if let Some(HopNext::Url { url, .. }) = &hop.next {
                        redirects.push(RedirectHop::Url {
                            step: step.step,
                            from: hop.url.clone(),
                            to: url.clone(),
                        });
                    }
                }
            }
        }
        let probe_error = resolver_unusable(&discoveries);
        let decision = verdict::decide(&discoveries, probe_error);
        let first = discoveries.remove(0);
        let srv = first
            .steps
            .iter()
            .find_map(|s| s.srv.as_ref())
            .map(SrvSummary::from_lookup)
            .unwrap_or_default();
        let mut report = ProbeReport {
            address: first.address,
            domain: first.domain,
            outcome: decision.outcome,
            endpoint: decision.endpoint,
            certificate_prompts: decision.certificate_prompts,
            redirect_prompt: decision.redirect_prompt,
            srv,
            steps: first.steps,
            redirects,
            restarted: discoveries,
            findings: Vec::new(),
            started_at: started_unix,
            duration_seconds: started.elapsed().as_secs_f64(),
        };
        report.findings = findings::explain(&report, &options.expect);
        report
    }

    async fn discover(
        &self,
        address: &str,
        options: &ProbeOptions,
        probe_deadline: Instant,
        hop_budget: usize,
    ) -> Discovery {
        let domain = domain_of(address).to_ascii_lowercase();
        let context = || StepContext {
            address: address.to_owned(),
            deadline: probe_deadline.min(Instant::now() + options.step_timeout),
            phase_timeout: options.phase_timeout,
            hop_budget,
        };
        let run = |step: StepId| {
            let ctx = context();
            let domain = domain.clone();
            let enabled = options.steps.contains(&step);
            async move {
                let started = Instant::now();
                let mut trace = if !enabled {
                    excluded(step, &domain)
                } else {
                    match step {
                        StepId::RootDomain => self.https_step(step, &domain, &ctx).await,
                        StepId::AutodiscoverDomain => {
                            self.https_step(step, &format!("autodiscover.{domain}"), &ctx)
                                .await
                        }
                        StepId::HttpRedirect => self.http_redirect_step(&domain, &ctx).await,
                        StepId::SrvRecord => self.srv_step(&domain, &ctx).await,
                    }
                };
                trace.duration_seconds = started.elapsed().as_secs_f64();
                trace
            }
        };
        let steps = join_all(StepId::ALL.map(run)).await;
        Discovery {
            address: address.to_owned(),
            domain,
            steps,
        }
    }

    async fn https_step(&self, step: StepId, host: &str, ctx: &StepContext) -> StepTrace {
        let url = redirect::https_url(host);
        let mut hops = Vec::new();
        let status = self
            .follow_chain(url.clone(), HopOrigin::Start, ctx, &mut hops)
            .await;
        StepTrace {
            step,
            url,
            status,
            duration_seconds: 0.0,
            srv: None,
            hops,
        }
    }

    async fn http_redirect_step(&self, domain: &str, ctx: &StepContext) -> StepTrace {
        let host = format!("autodiscover.{domain}");
        let url = redirect::http_url(&host);
        let (mut first, result) = self
            .hop(&url, HopOrigin::Start, Request::PlainGet, ctx)
            .await;
        let mut hops = Vec::new();
        let status = match (result.status, first.next.clone()) {
            (
                None,
                Some(HopNext::Url {
                    url: target,
                    origin,
                }),
            ) => {
                hops.push(first);
                let status = self.follow_chain(target, origin, ctx, &mut hops).await;
                backfill(&mut hops[..1], status);
                status
            }
            (status, _) => {
                let status = status.unwrap_or(StepStatus::RedirectInvalid);
                first.status = status;
                hops.push(first);
                status
            }
        };
        StepTrace {
            step: StepId::HttpRedirect,
            url,
            status,
            duration_seconds: 0.0,
            srv: None,
            hops,
        }
    }

    async fn srv_step(&self, domain: &str, ctx: &StepContext) -> StepTrace {
        let name = srv::srv_name(domain);
        let lookup = self.dns.lookup_srv(&name, ctx.phase()).await;
        let usable = srv::usable(&lookup.records);
        let mut hops = Vec::new();
        let mut status = if lookup.answer.is_negative() || !lookup.records.is_empty() {
            StepStatus::DnsNoRecord
        } else {
            StepStatus::DnsError
        };
        let mut first_status = None;
        for record in usable {
            let url = redirect::https_url(&record.target);
            let origin = HopOrigin::SrvTarget {
                record: record.clone(),
            };
            let target_status = self.follow_chain(url, origin, ctx, &mut hops).await;
            first_status.get_or_insert(target_status);
            // Outlook stops at the first target that answers or prompts.
            if target_status == StepStatus::EndpointFound || target_status.is_certificate_prompt() {
                first_status = Some(target_status);
                break;
            }
        }
        if let Some(target_status) = first_status {
            status = target_status;
        }
        StepTrace {
            step: StepId::SrvRecord,
            url: format!("dns:{name}?type=SRV"),
            status,
            duration_seconds: 0.0,
            srv: Some(lookup),
            hops,
        }
    }

    /// POSTs to `url` and follows https redirects; returns the status where the chain ends.
    async fn follow_chain(
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
            let last = hops.len() - 1;
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
                    } else if followed + 1 > ctx.hop_budget {
                        Some(RedirectRefusal::TooManyHops)
                    } else {
                        None
                    };
                    if let Some(refusal) = refusal {
                        let hop = &mut hops[last];
                        hop.next = None;
                        hop.redirect_refused = Some(refusal.to_string());
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
    async fn hop(
        &self,
        url: &str,
        origin: HopOrigin,
        request: Request,
        ctx: &StepContext,
    ) -> (Hop, classify::HopResult) {
        let host = redirect::host_of(url).unwrap_or_default().to_owned();
        let port = port_of(url);
        let (lookup, addresses) = match host.parse::<IpAddr>() {
            Ok(ip) => (None, vec![ip]),
            Err(_) => {
                let lookup = self.dns.lookup_host(&host, ctx.phase()).await;
                let addresses = lookup.addresses.clone();
                (Some(lookup), addresses)
            }
        };
        let mut hop = Hop {
            url: url.to_owned(),
            origin,
            lookup: lookup.clone(),
            addresses: Vec::new(),
            status: StepStatus::DnsNoRecord,
            next: None,
            redirect_refused: None,
        };
        if let Some(status) = lookup.as_ref().and_then(HostLookup::failure_status) {
            hop.status = status;
            let result = classify::HopResult {
                status: Some(status),
                next: None,
                refused: None,
            };
            return (hop, result);
        }
        let attempts = addresses
            .iter()
            .map(|ip| self.attempt(url, &host, SocketAddr::new(*ip, port), request, ctx));
        let (attempts, results): (Vec<AddressAttempt>, Vec<AddressResult>) =
            join_all(attempts).await.into_iter().unzip();
        let result = classify::aggregate(&results);
        hop.addresses = attempts;
        hop.status = result.status.unwrap_or(StepStatus::EndpointFound);
        hop.next = result.next.clone();
        hop.redirect_refused = result.refused.as_ref().map(ToString::to_string);
        (hop, result)
    }

    /// One address: TCP, TLS (https), the request, and the fingerprint GET after a 401.
    async fn attempt(
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
        };
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
            match request {
                Request::HttpsPost => {
                    let (tls, stream) = self.tls.handshake(tcp, host, ctx.phase()).await;
                    attempt.tls = Some(tls);
                    if let Some(stream) = stream {
                        self.post(stream, &host_header, &path, ctx, &mut attempt)
                            .await;
                    }
                }
                Request::PlainGet => match HttpConnection::open(tcp, ctx.phase()).await {
                    Ok(mut connection) => {
                        attempt.http = Some(connection.get(&host_header, &path, ctx.phase()).await);
                    }
                    Err(failure) => attempt.http = Some(HttpExchange::failed("GET", failure)),
                },
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
        (attempt, result)
    }

    async fn post<S>(
        &self,
        stream: S,
        host_header: &str,
        path: &str,
        ctx: &StepContext,
        attempt: &mut AddressAttempt,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let mut connection = match HttpConnection::open(stream, ctx.phase()).await {
            Ok(connection) => connection,
            Err(failure) => {
                attempt.http = Some(HttpExchange::failed("POST", failure));
                return;
            }
        };
        let exchange = connection
            .post_autodiscover(host_header, path, &ctx.address, ctx.phase())
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

/// The `@domain` part of an address (the whole text when there is no `@`).
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}

fn excluded(step: StepId, domain: &str) -> StepTrace {
    let url = match step {
        StepId::RootDomain => redirect::https_url(domain),
        StepId::AutodiscoverDomain => redirect::https_url(&format!("autodiscover.{domain}")),
        StepId::HttpRedirect => redirect::http_url(&format!("autodiscover.{domain}")),
        StepId::SrvRecord => format!("dns:{}?type=SRV", srv::srv_name(domain)),
    };
    StepTrace {
        step,
        url,
        status: StepStatus::Excluded,
        duration_seconds: 0.0,
        srv: None,
        hops: Vec::new(),
    }
}

/// Hops and addresses that redirected take the status of where the chain ended.
fn backfill(hops: &mut [Hop], status: StepStatus) {
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

fn mark_refused(step: &mut StepTrace, reason: String) {
    step.status = StepStatus::RedirectInvalid;
    if let Some(hop) = step.hops.iter_mut().rev().find(|h| h.next.is_some()) {
        hop.next = None;
        hop.status = StepStatus::RedirectInvalid;
        hop.redirect_refused = Some(reason);
    }
}

/// No DNS server answered any question of this probe: the probe could not run.
fn resolver_unusable(discoveries: &[Discovery]) -> bool {
    let mut answers = Vec::new();
    for discovery in discoveries {
        for step in &discovery.steps {
            if let Some(srv) = &step.srv {
                answers.push(&srv.answer);
            }
            for hop in &step.hops {
                if let Some(lookup) = &hop.lookup {
                    answers.push(&lookup.a);
                    answers.push(&lookup.aaaa);
                }
            }
        }
    }
    !answers.is_empty() && answers.iter().all(|a| a.is_transport_failure())
}

fn port_of(url: &str) -> u16 {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(443)
}

fn path_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| redirect::AUTODISCOVER_PATH.to_owned(),
        |u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
    )
}

fn host_header(host: &str, port: u16, request: Request) -> String {
    let default = match request {
        Request::HttpsPost => 443,
        Request::PlainGet => 80,
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if port == default {
        host
    } else {
        format!("{host}:{port}")
    }
}
