//! Runs one probe: every step for an address (concurrently, each within its own budget), every
//! address of every host, redirect chains and `redirectAddr` restarts. It returns the facts and
//! the decision; the caller runs the diagnosis (`diagnose::explain`).

mod aia;
pub mod credentials;
mod engine;
pub mod microsoft365;
mod services;
mod shared;
mod steps;

use crate::model::address::MailAddress;
use crate::model::facts::HostLookup;
use crate::model::facts::{HopNext, MAX_HOPS, RedirectRefusal, StepTrace};
use crate::model::report::{Discovery, ProbeReport, RedirectHop};
use crate::model::step::{StepId, StepStatus, StepTarget};
use crate::net::connect::Connector;
use crate::net::dns::Dns;
use crate::net::tls::{TlsTrust, unix_now};
use crate::protocol::{srv, verdict};
use aia::AiaCache;
use credentials::CredentialsPolicy;
use futures_util::future::join_all;
use microsoft365::Microsoft365Client;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// Default budget of a whole probe.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default budget of one step.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// Default budget of one network phase.
pub const DEFAULT_PHASE_TIMEOUT: Duration = Duration::from_secs(5);
/// No budget is longer than this, whatever the options say (`Instant + Duration` panics on
/// overflow; the configuration allows at most 10 minutes).
const LONGEST_BUDGET: Duration = Duration::from_secs(3600);

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
    /// Credentials for the endpoint, and where they may go (SPEC §3.4); none: every request
    /// is unauthenticated.
    pub credentials: Option<CredentialsPolicy>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            step_timeout: DEFAULT_STEP_TIMEOUT,
            phase_timeout: DEFAULT_PHASE_TIMEOUT,
            steps: StepId::ALL.to_vec(),
            credentials: None,
        }
    }
}

/// Gathers facts with a resolver, a trust store and a way to open sockets.
#[derive(Clone)]
pub struct Prober {
    dns: Dns,
    tls: TlsTrust,
    connector: Arc<dyn Connector>,
    microsoft365: Arc<Microsoft365Client>,
    aia: Arc<AiaCache>,
    shared: Arc<shared::SharedAttempts>,
}

/// Where a step must stop, and for which address it asks.
#[derive(Clone)]
struct StepContext {
    address: MailAddress,
    deadline: Instant,
    phase_timeout: Duration,
    hop_budget: usize,
    lookups: Arc<HostLookups>,
}

/// The host lookups of one discovery, one per name: the steps run side by side and several ask
/// for the same name (`autodiscover.D` for the POST and the http GET, Microsoft's host for the
/// query and the POST), which a client's resolver cache answers once too.
#[derive(Default)]
struct HostLookups {
    names: std::sync::Mutex<std::collections::HashMap<String, Arc<OnceCell<HostLookup>>>>,
}

impl HostLookups {
    fn cell(&self, host: &str) -> Arc<OnceCell<HostLookup>> {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(host.to_ascii_lowercase())
            .or_default()
            .clone()
    }
}

impl StepContext {
    /// The time a network phase may take now: its own budget, or what is left of the step's.
    fn phase(&self) -> Duration {
        self.phase_timeout
            .min(self.deadline.saturating_duration_since(Instant::now()))
    }
}

impl Prober {
    /// A prober that asks Microsoft 365 at its public address, with default politeness.
    pub fn new(dns: Dns, tls: TlsTrust, connector: Arc<dyn Connector>) -> Self {
        Self {
            dns,
            tls,
            connector,
            microsoft365: Arc::new(Microsoft365Client::default()),
            aia: Arc::new(AiaCache::default()),
            shared: Arc::default(),
        }
    }

    /// Uses `client` (shared across reloads, so its cache and rate limit survive them).
    pub fn with_microsoft365(mut self, client: Arc<Microsoft365Client>) -> Self {
        self.microsoft365 = client;
        self
    }

    /// The Microsoft 365 client, for its counters.
    pub fn microsoft365(&self) -> &Arc<Microsoft365Client> {
        &self.microsoft365
    }

    /// Probes `address`.
    pub async fn probe(&self, address: &MailAddress, options: &ProbeOptions) -> ProbeReport {
        let started = Instant::now();
        let started_unix = unix_now();
        let deadline = started + options.timeout.min(LONGEST_BUDGET);
        let mut visited: HashSet<MailAddress> = HashSet::from([address.clone()]);
        let mut redirects: Vec<RedirectHop> = Vec::new();
        let (first, delegation) = tokio::join!(
            self.discover(address, options, deadline, MAX_HOPS),
            self.dns
                .lookup_delegation(address.domain().ascii(), options.phase_timeout)
        );
        let mut discoveries = vec![first];
        while let Some(last) = discoveries.last_mut() {
            let Some((step_index, text)) = verdict::pending_restart(last) else {
                break;
            };
            let step = &mut last.steps[step_index];
            let from = last.address.clone();
            let next = match MailAddress::parse(&text) {
                Err(_) => Err(RedirectRefusal::Malformed(text)),
                Ok(next) if visited.contains(&next) => Err(RedirectRefusal::AddressLoop(text)),
                Ok(_) if redirects.len() >= MAX_HOPS => Err(RedirectRefusal::TooManyHops),
                Ok(next) => Ok(next),
            };
            let next = match next {
                Ok(next) => next,
                Err(refusal) => {
                    mark_refused(step, refusal);
                    continue;
                }
            };
            redirects.push(RedirectHop::Address {
                step: step.step,
                from: from.to_string(),
                to: next.to_string(),
            });
            visited.insert(next.clone());
            let budget = MAX_HOPS.saturating_sub(redirects.len());
            discoveries.push(self.discover(&next, options, deadline, budget).await);
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
        let mut decision = verdict::decide(&discoveries, probe_error);
        let after = match (&decision.endpoint, probe_error) {
            (Some(endpoint), false) => {
                let ctx = StepContext {
                    address: discoveries
                        .last()
                        .map_or_else(|| address.clone(), |d| d.address.clone()),
                    deadline: deadline.min(Instant::now() + options.step_timeout),
                    phase_timeout: options.phase_timeout,
                    hop_budget: 0,
                    lookups: Arc::default(),
                };
                self.after_autodiscover(&discoveries, endpoint, options.credentials.as_ref(), &ctx)
                    .await
            }
            _ => services::AfterAutodiscover::default(),
        };
        verdict::add_services(&mut decision, &after.services);
        let first = discoveries.remove(0);
        let srv = first
            .steps
            .iter()
            .find_map(|s| s.srv.as_ref())
            .map(srv::summarize)
            .unwrap_or_default();
        ProbeReport {
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
            settings: after.settings,
            settings_source: after.settings_source,
            services: after.services,
            service_certificate_prompts: decision.service_certificate_prompts,
            credentials: after.credentials,
            findings: Vec::new(),
            resolver: self.dns.describe().to_owned(),
            delegation: Some(delegation),
            started_at: started_unix,
            duration_seconds: started.elapsed().as_secs_f64(),
        }
    }

    async fn discover(
        &self,
        address: &MailAddress,
        options: &ProbeOptions,
        probe_deadline: Instant,
        hop_budget: usize,
    ) -> Discovery {
        let base = self.microsoft365.base_url();
        let lookups = Arc::new(HostLookups::default());
        let run = |step: StepId| {
            let ctx = StepContext {
                address: address.clone(),
                deadline: probe_deadline
                    .min(Instant::now() + options.step_timeout.min(LONGEST_BUDGET)),
                phase_timeout: options.phase_timeout,
                hop_budget,
                lookups: lookups.clone(),
            };
            let enabled = options.steps.contains(&step);
            let base = base.clone();
            async move {
                let started = Instant::now();
                let target = StepTarget {
                    address: &ctx.address,
                    microsoft365_base: &base,
                };
                let url = (step.spec().url)(&target);
                let mut trace = if enabled {
                    steps::run(self, step.spec(), url, &ctx).await
                } else {
                    StepTrace::new(step, url, StepStatus::Excluded)
                };
                trace.duration_seconds = started.elapsed().as_secs_f64();
                trace
            }
        };
        let steps = join_all(StepId::ALL.iter().map(|step| run(*step))).await;
        Discovery {
            address: address.clone(),
            domain: address.domain().clone(),
            steps,
        }
    }
}

fn mark_refused(step: &mut StepTrace, refusal: RedirectRefusal) {
    step.status = StepStatus::RedirectInvalid;
    if let Some(hop) = step.hops.iter_mut().rev().find(|h| h.next.is_some()) {
        hop.next = None;
        hop.status = StepStatus::RedirectInvalid;
        hop.redirect_refused = Some(refusal);
        for attempt in &mut hop.addresses {
            if attempt.status == StepStatus::EndpointFound {
                attempt.status = StepStatus::RedirectInvalid;
            }
        }
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
