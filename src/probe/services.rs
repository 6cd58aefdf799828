//! After Autodiscover (SPEC §3.4): the settings of the endpoint Outlook found (answered without
//! authentication, or to the configured credentials after the 401), then every service endpoint
//! they name, checked the way Outlook meets it: DNS (every address), TCP, TLS (implicit or
//! STARTTLS), the certificate against the announced name, and the protocol's first answer.

use super::credentials::{Credentials, CredentialsPolicy};
use super::{Prober, StepContext};
use crate::model::facts::{
    AddressAttempt, BodyKind, ConnectResult, HostLookup, HttpExchange, HttpFailure, StepTrace,
};
use crate::model::pox::PoxResponse;
use crate::model::report::{Discovery, Endpoint};
use crate::model::settings::{
    CredentialsResult, CredentialsUse, ServiceAttempt, ServiceCheck, ServiceKind, ServiceStatus,
    ServiceTarget, Settings, SettingsSource, TlsMode,
};
use crate::model::step::{StepId, StepStatus};
use crate::net::http::HttpConnection;
use crate::net::mail::{self, DialogueFailure, LineStream, MailProtocol};
use crate::protocol::settings::service_targets;
use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Most addresses tried per service endpoint.
const MAX_SERVICE_ADDRESSES: usize = 8;
/// Most service endpoints checked at once by one probe (each tries all its addresses at once).
const SERVICES_AT_ONCE: usize = 4;

/// What the probe learnt after the verdict's walk.
#[derive(Default)]
pub(super) struct AfterAutodiscover {
    pub(super) settings: Option<Settings>,
    pub(super) settings_source: Option<SettingsSource>,
    pub(super) services: Vec<ServiceCheck>,
    pub(super) credentials: Option<CredentialsUse>,
}

impl Prober {
    /// Reads the endpoint's settings (with the credentials when the policy allows it) and
    /// checks the service endpoints they name, within `ctx`'s deadline.
    pub(super) async fn after_autodiscover(
        &self,
        discoveries: &[Discovery],
        endpoint: &Endpoint,
        policy: Option<&CredentialsPolicy>,
        ctx: &StepContext,
    ) -> AfterAutodiscover {
        let mut after = AfterAutodiscover::default();
        let Some((index, step)) = endpoint_step(discoveries, endpoint) else {
            return after;
        };
        let unauthenticated = step.final_hop().and_then(|hop| {
            hop.addresses
                .iter()
                .filter(|a| a.status == StepStatus::EndpointFound)
                .find_map(|a| settings_of(a.http.as_ref()?))
        });
        match (unauthenticated, policy) {
            (Some(settings), policy) => {
                after.settings = Some(settings);
                after.settings_source = Some(SettingsSource {
                    url: endpoint.url.clone(),
                    authenticated: false,
                });
                after.credentials = policy.map(|_| CredentialsUse {
                    url: endpoint.url.clone(),
                    result: CredentialsResult::NotSent {
                        reason: "the endpoint answered with settings without authentication".into(),
                    },
                });
            }
            (None, Some(policy)) => {
                let (used, settings) = self.authenticate(policy, index, step, ctx).await;
                if let Some(settings) = settings {
                    after.settings = Some(settings);
                    after.settings_source = Some(SettingsSource {
                        url: endpoint.url.clone(),
                        authenticated: true,
                    });
                }
                after.credentials = Some(used);
            }
            (None, None) => {}
        }
        if let Some(settings) = &after.settings {
            let targets = service_targets(settings);
            // In order, a few at a time: a settings answer naming 16 hosts with 8 addresses each
            // must not open 128 connections at once.
            after.services = stream::iter(targets.into_iter().map(|t| self.check_service(t, ctx)))
                .buffered(SERVICES_AT_ONCE)
                .collect()
                .await;
        }
        after
    }

    /// POSTs the Autodiscover request with the credentials to the endpoint that answered 401,
    /// when the safety rules allow it (TLS, no certificate prompt on the way, redirects only to
    /// `credentials_hosts`).
    async fn authenticate(
        &self,
        policy: &CredentialsPolicy,
        discovery_index: usize,
        step: &StepTrace,
        ctx: &StepContext,
    ) -> (CredentialsUse, Option<Settings>) {
        let Some(hop) = step.final_hop() else {
            return not_sent(String::new(), "the endpoint has no URL");
        };
        let url = hop.url.clone();
        if !url.to_ascii_lowercase().starts_with("https://") {
            return not_sent(url, "the endpoint is not https");
        }
        let prompt_on_the_way = step.addresses().any(|(_, a)| {
            a.tls
                .as_ref()
                .and_then(|t| t.verdict.as_ref())
                .is_some_and(|v| !v.is_valid())
        });
        if prompt_on_the_way {
            return not_sent(
                url,
                "a certificate on the way to the endpoint is not valid (credentials only go where \
                 Outlook shows no certificate alert)",
            );
        }
        let host = hop.host();
        let direct = discovery_index == 0
            && matches!(step.step, StepId::RootDomain | StepId::AutodiscoverDomain)
            && step.hops.len() == 1;
        if !direct && !policy.hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
            let how = if discovery_index > 0 {
                "a redirectAddr answer".to_owned()
            } else if step.hops.len() > 1 {
                "a redirect".to_owned()
            } else {
                format!("the {} step", step.step)
            };
            return not_sent(
                url,
                &format!(
                    "{host} was reached through {how} and is not listed in the domain's \
                     credentials_hosts"
                ),
            );
        }
        let challenged: Vec<&AddressAttempt> = hop
            .addresses
            .iter()
            .filter(|a| {
                a.status == StepStatus::EndpointFound
                    && a.http.as_ref().is_some_and(|h| h.status == Some(401))
            })
            .collect();
        let Some(first) = challenged.first() else {
            return not_sent(url, "the endpoint did not ask for authentication");
        };
        let schemes = first
            .http
            .as_ref()
            .map(HttpExchange::auth_schemes)
            .unwrap_or_default();
        if !schemes.is_empty() && schemes.iter().all(|s| s.eq_ignore_ascii_case("bearer")) {
            return not_sent(
                url,
                "the endpoint offers only Bearer (modern) authentication, which a probe with a \
                 password cannot use",
            );
        }
        let credentials = match Credentials::load(&policy.file) {
            Ok(credentials) => credentials,
            Err(error) => return not_sent(url, &error.to_string()),
        };
        let path = url::Url::parse(&url)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| crate::model::step::AUTODISCOVER_PATH.to_owned());
        for attempt in challenged {
            let Some(exchange) = self
                .authenticated_post(&credentials, &host, attempt.address, &path, ctx)
                .await
            else {
                continue;
            };
            let settings = (exchange.status == Some(200))
                .then(|| settings_of(&exchange))
                .flatten();
            let used = CredentialsUse {
                url,
                result: CredentialsResult::Sent {
                    address: attempt.address,
                    exchange: Box::new(exchange),
                },
            };
            return (used, settings);
        }
        not_sent(
            url,
            "no address of the endpoint could be reached again with a valid certificate",
        )
    }

    /// One authenticated POST over a fresh connection whose certificate is judged again; `None`
    /// when the connection or the certificate fails (the credentials are then not sent).
    async fn authenticated_post(
        &self,
        credentials: &Credentials,
        host: &str,
        address: SocketAddr,
        path: &str,
        ctx: &StepContext,
    ) -> Option<HttpExchange> {
        if self.policy.refusal(address.ip()).is_some() {
            return None;
        }
        let (_, opened) = self.open_budgeted(address, ctx).await;
        let (tcp, _slot) = opened?;
        let mut outcome = self.tls.handshake(tcp, host, ctx.phase()).await;
        self.complete_chain(&mut outcome, host, ctx).await;
        if !outcome.facts.verdict.as_ref().is_some_and(|v| v.is_valid()) {
            return None;
        }
        let stream = outcome.stream?;
        let mut connection = HttpConnection::open(stream, ctx.phase()).await.ok()?;
        let host_header = if address.port() == 443 {
            host.to_owned()
        } else {
            format!("{host}:{}", address.port())
        };
        let authorization = credentials.basic_authorization();
        let exchange = connection
            .post_autodiscover_authorized(
                &host_header,
                path,
                &ctx.address.ascii(),
                &authorization,
                ctx.phase(),
            )
            .await;
        Some(exchange)
    }

    /// Checks one service endpoint on every address of its host.
    async fn check_service(&self, target: ServiceTarget, ctx: &StepContext) -> ServiceCheck {
        let started = Instant::now();
        let (lookup, ips): (Option<HostLookup>, Vec<IpAddr>) = match target.host.parse::<IpAddr>() {
            Ok(ip) => (None, vec![ip]),
            Err(_) => {
                let lookup = self.dns.lookup_host(&target.host, ctx.phase()).await;
                let ips = lookup.addresses.clone();
                (Some(lookup), ips)
            }
        };
        let mut check = ServiceCheck {
            target,
            lookup,
            addresses: Vec::new(),
            status: ServiceStatus::DnsNoRecord,
            duration_seconds: 0.0,
        };
        if let Some(status) = check.lookup.as_ref().and_then(HostLookup::failure_status) {
            check.status = ServiceStatus::from_step(status);
            check.duration_seconds = started.elapsed().as_secs_f64();
            return check;
        }
        let attempts = ips.into_iter().take(MAX_SERVICE_ADDRESSES).map(|ip| {
            self.service_attempt(&check.target, SocketAddr::new(ip, check.target.port), ctx)
        });
        check.addresses = join_all(attempts).await;
        check.status = aggregate(&check.addresses);
        check.duration_seconds = started.elapsed().as_secs_f64();
        check
    }

    async fn service_attempt(
        &self,
        target: &ServiceTarget,
        address: SocketAddr,
        ctx: &StepContext,
    ) -> ServiceAttempt {
        let started = Instant::now();
        let mut attempt = ServiceAttempt {
            address,
            connect: ConnectResult::Timeout,
            connect_seconds: 0.0,
            dialogue: Vec::new(),
            starttls_offered: None,
            tls: None,
            http: None,
            status: ServiceStatus::Timeout,
            detail: None,
            duration_seconds: 0.0,
        };
        if let Some(reason) = self.policy.refusal(address.ip()) {
            // Never connected to, whoever names it (as for the Autodiscover steps).
            let detail = format!(
                "{} is {}: the probe does not connect there",
                address.ip(),
                reason.describe()
            );
            attempt.connect = ConnectResult::Failed {
                detail: detail.clone(),
            };
            attempt.status = ServiceStatus::ConnectRefused;
            attempt.detail = Some(detail);
            attempt.duration_seconds = started.elapsed().as_secs_f64();
            return attempt;
        }
        let (connect, opened) = self.open_budgeted(address, ctx).await;
        attempt.connect_seconds = started.elapsed().as_secs_f64();
        match &connect {
            ConnectResult::Refused | ConnectResult::Failed { .. } => {
                attempt.status = ServiceStatus::ConnectRefused;
            }
            ConnectResult::LocalError { detail } => {
                // The exporter's own limit, not the server's: the probe's outcome is
                // `probe_error` (`verdict::service_local_failure`).
                attempt.detail = Some(format!("not tried: {detail}"));
            }
            ConnectResult::Timeout | ConnectResult::Connected => {}
        }
        attempt.connect = connect;
        if let Some((tcp, _slot)) = opened {
            let (status, detail) = if target.service.is_https() {
                self.https_service(target, tcp, ctx, &mut attempt).await
            } else {
                self.mail_service(target, tcp, ctx, &mut attempt).await
            };
            attempt.status = status;
            attempt.detail = detail;
        }
        attempt.duration_seconds = started.elapsed().as_secs_f64();
        attempt
    }

    /// TLS (when the URL is https), then an unauthenticated GET that must answer 401 (ECP: any
    /// answer below 500, it sends browsers to the sign-in page).
    async fn https_service(
        &self,
        target: &ServiceTarget,
        tcp: TcpStream,
        ctx: &StepContext,
        attempt: &mut ServiceAttempt,
    ) -> (ServiceStatus, Option<String>) {
        let url = target.url.clone().unwrap_or_default();
        let path = url::Url::parse(&url).map_or_else(
            |_| "/".to_owned(),
            |u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_owned(),
            },
        );
        let host_header = if matches!(target.port, 443 | 80) {
            target.host.clone()
        } else {
            format!("{}:{}", target.host, target.port)
        };
        let mut certificate = None;
        let exchange = if target.tls == TlsMode::None {
            http_get(tcp, &host_header, &path, ctx).await
        } else {
            let (stream, problem, failure) = self
                .tls(tcp, &target.host, &[b"http/1.1"], ctx, attempt)
                .await;
            let Some(stream) = stream else {
                return failure;
            };
            certificate = problem;
            http_get(stream, &host_header, &path, ctx).await
        };
        let answered = exchange.status;
        let timed_out = exchange.failure == Some(HttpFailure::Timeout) && answered.is_none();
        attempt.http = Some(exchange);
        if let Some(problem) = certificate {
            return problem;
        }
        let expected = match target.service {
            ServiceKind::Ecp => answered.is_some_and(|s| s < 500),
            _ => answered == Some(401),
        };
        match (expected, answered) {
            (true, _) => (ServiceStatus::Ok, None),
            (false, _) if timed_out => (ServiceStatus::Timeout, Some("no HTTP answer".into())),
            (false, Some(status)) => (
                ServiceStatus::HttpStatus,
                Some(format!(
                    "HTTP {status}, expected {}",
                    if target.service == ServiceKind::Ecp {
                        "an answer below 500"
                    } else {
                        "401 (authentication required)"
                    }
                )),
            ),
            (false, None) => (ServiceStatus::HttpStatus, Some("no HTTP answer".into())),
        }
    }

    /// Greeting, capabilities and STARTTLS (or TLS first on implicit-TLS ports).
    async fn mail_service(
        &self,
        target: &ServiceTarget,
        tcp: TcpStream,
        ctx: &StepContext,
        attempt: &mut ServiceAttempt,
    ) -> (ServiceStatus, Option<String>) {
        let protocol = match target.service {
            ServiceKind::Imap => MailProtocol::Imap,
            ServiceKind::Pop3 => MailProtocol::Pop3,
            _ => MailProtocol::Smtp,
        };
        match target.tls {
            TlsMode::Implicit => {
                let (stream, problem, failure) =
                    self.tls(tcp, &target.host, &[], ctx, attempt).await;
                let Some(stream) = stream else {
                    return failure;
                };
                let greeting =
                    greet_and_quit(LineStream::new(stream, ctx.phase()), protocol, attempt).await;
                if let Some(problem) = problem {
                    return problem;
                }
                greeted(greeting, protocol, attempt)
            }
            TlsMode::None => {
                let greeting =
                    greet_and_quit(LineStream::new(tcp, ctx.phase()), protocol, attempt).await;
                greeted(greeting, protocol, attempt)
            }
            TlsMode::Starttls => {
                let mut lines = LineStream::new(tcp, ctx.phase());
                let capabilities = match mail::greet(&mut lines, protocol).await {
                    Ok(capabilities) => capabilities,
                    Err(failure) => {
                        attempt.dialogue = lines.log;
                        return dialogue_status(failure);
                    }
                };
                attempt.starttls_offered = capabilities.starttls(protocol);
                if attempt.starttls_offered == Some(false) {
                    mail::quit(&mut lines, protocol).await;
                    attempt.dialogue = lines.log;
                    return (
                        ServiceStatus::StarttlsFailed,
                        Some("the server does not advertise STARTTLS".into()),
                    );
                }
                if let Err(failure) = mail::starttls(&mut lines, protocol).await {
                    attempt.dialogue = lines.log;
                    return dialogue_status(failure);
                }
                let (tcp, log) = match lines.into_inner() {
                    Ok(parts) => parts,
                    Err((failure, log)) => {
                        attempt.dialogue = log;
                        return dialogue_status(failure);
                    }
                };
                attempt.dialogue = log;
                let (stream, problem, failure) =
                    self.tls(tcp, &target.host, &[], ctx, attempt).await;
                let Some(stream) = stream else {
                    return match failure.0 {
                        // A handshake that fails right after the server agreed to STARTTLS.
                        ServiceStatus::TlsHandshakeFailed => {
                            (ServiceStatus::StarttlsFailed, failure.1)
                        }
                        _ => failure,
                    };
                };
                let mut lines = LineStream::new(stream, ctx.phase());
                mail::quit(&mut lines, protocol).await;
                attempt.dialogue.extend(lines.log);
                problem.unwrap_or((ServiceStatus::Ok, None))
            }
        }
    }

    /// A TLS handshake with the certificate judged against `host` (and completed from AIA as
    /// Windows does). Returns the stream (also behind an invalid certificate, so the trace shows
    /// what answers there), the certificate problem, and the status when there is no stream.
    async fn tls(
        &self,
        tcp: TcpStream,
        host: &str,
        alpn: &[&[u8]],
        ctx: &StepContext,
        attempt: &mut ServiceAttempt,
    ) -> (
        Option<tokio_rustls::client::TlsStream<TcpStream>>,
        Option<(ServiceStatus, Option<String>)>,
        (ServiceStatus, Option<String>),
    ) {
        let mut outcome = self.tls.handshake_with(tcp, host, ctx.phase(), alpn).await;
        self.complete_chain(&mut outcome, host, ctx).await;
        let failure = match &outcome.facts.handshake {
            crate::model::facts::TlsHandshake::TimedOut => (
                ServiceStatus::Timeout,
                Some("no TLS handshake in time".into()),
            ),
            crate::model::facts::TlsHandshake::Failed { error } => {
                (ServiceStatus::TlsHandshakeFailed, Some(error.clone()))
            }
            crate::model::facts::TlsHandshake::Established => (ServiceStatus::Ok, None),
        };
        let problem = outcome
            .facts
            .verdict
            .as_ref()
            .and_then(|v| v.problem())
            .map(|p| (ServiceStatus::from_step(p), None));
        attempt.tls = Some(outcome.facts);
        (outcome.stream, problem, failure)
    }
}

async fn http_get<S>(stream: S, host_header: &str, path: &str, ctx: &StepContext) -> HttpExchange
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match HttpConnection::open(stream, ctx.phase()).await {
        Ok(mut connection) => connection.get(host_header, path, ctx.phase()).await,
        Err(failure) => HttpExchange::failed(crate::model::facts::HttpMethod::Get, failure),
    }
}

/// Reads the greeting and capabilities, says goodbye when they came, and keeps the dialogue.
async fn greet_and_quit<S>(
    mut lines: LineStream<S>,
    protocol: MailProtocol,
    attempt: &mut ServiceAttempt,
) -> Result<mail::Capabilities, DialogueFailure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let greeting = mail::greet(&mut lines, protocol).await;
    if greeting.is_ok() {
        mail::quit(&mut lines, protocol).await;
    }
    attempt.dialogue = lines.log;
    greeting
}

/// The status of a service whose dialogue ended with `greeting`.
fn greeted(
    greeting: Result<mail::Capabilities, DialogueFailure>,
    protocol: MailProtocol,
    attempt: &mut ServiceAttempt,
) -> (ServiceStatus, Option<String>) {
    match greeting {
        Ok(capabilities) => {
            attempt.starttls_offered = capabilities.starttls(protocol);
            (ServiceStatus::Ok, None)
        }
        Err(failure) => dialogue_status(failure),
    }
}

fn dialogue_status(failure: DialogueFailure) -> (ServiceStatus, Option<String>) {
    match failure {
        DialogueFailure::Timeout => (
            ServiceStatus::Timeout,
            Some("the server did not answer in time".into()),
        ),
        DialogueFailure::Unexpected(text) => (ServiceStatus::UnexpectedGreeting, Some(text)),
        DialogueFailure::StarttlsRefused(text) => (ServiceStatus::StarttlsFailed, Some(text)),
    }
}

/// The worst status among the addresses that could be reached (a client tries the next
/// address when one cannot be reached), or among all when none could.
fn aggregate(attempts: &[ServiceAttempt]) -> ServiceStatus {
    let reached: Vec<ServiceStatus> = attempts
        .iter()
        .filter(|a| a.connect == ConnectResult::Connected)
        .map(|a| a.status)
        .collect();
    let pool = if reached.is_empty() {
        attempts.iter().map(|a| a.status).collect()
    } else {
        reached
    };
    pool.into_iter().min().unwrap_or(ServiceStatus::DnsNoRecord)
}

fn settings_of(exchange: &HttpExchange) -> Option<Settings> {
    match &exchange.body {
        BodyKind::Autodiscover {
            response: PoxResponse::Settings { settings },
        } => Some(settings.clone()),
        _ => None,
    }
}

fn not_sent(url: String, reason: &str) -> (CredentialsUse, Option<Settings>) {
    (
        CredentialsUse {
            url,
            result: CredentialsResult::NotSent {
                reason: reason.to_owned(),
            },
        },
        None,
    )
}

/// The step (and its discovery) where the verdict's endpoint was found.
fn endpoint_step<'a>(
    discoveries: &'a [Discovery],
    endpoint: &Endpoint,
) -> Option<(usize, &'a StepTrace)> {
    discoveries.iter().enumerate().rev().find_map(|(index, d)| {
        d.steps
            .iter()
            .find(|s| {
                s.step == endpoint.step
                    && s.status == StepStatus::EndpointFound
                    && s.final_hop().is_some_and(|h| h.url == endpoint.url)
            })
            .map(|s| (index, s))
    })
}
