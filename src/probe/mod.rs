//! Runs one probe: every step for an address (concurrently, each within its own budget), every
//! address of every host, redirect chains and `redirectAddr` restarts. It returns the facts and
//! the decision; the caller runs the diagnosis (`diagnose::explain`).

mod aia;
pub mod credentials;
mod engine;
mod kept;
pub mod microsoft365;
mod services;
mod shared;
mod steps;

use crate::model::address::MailAddress;
use crate::model::facts::HostLookup;
use crate::model::facts::{ConnectResult, HopNext, MAX_HOPS, RedirectRefusal, StepTrace};
use crate::model::report::{Discovery, ProbeReport, RedirectHop};
use crate::model::step::{StepId, StepStatus, StepTarget};
use crate::net::connect::{Connector, process_connection_limit};
use crate::net::dns::Dns;
use crate::net::tls::{TlsTrust, unix_now};
use crate::protocol::destination::AddressPolicy;
use crate::protocol::{srv, verdict};
use aia::AiaCache;
use credentials::CredentialsPolicy;
use futures_util::future::join_all;
use microsoft365::Microsoft365Client;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Default budget of a whole probe.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default budget of one step.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// Default budget of one network phase.
pub const DEFAULT_PHASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections one probe has open at most: its steps run side by side, each trying every
/// address of a host (at most `MAX_ADDRESSES_PER_HOST`).
pub const MAX_CONNECTIONS_PER_PROBE: usize = 32;
/// Connections all probes of the process have open at most (or a quarter of the file
/// descriptor limit, when that is lower).
pub const MAX_CONNECTIONS: usize = 256;
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
    kept: Arc<kept::KeptConnections>,
    lookups: Arc<shared::SharedLookups>,
    connections: Arc<Semaphore>,
    connection_limit: usize,
    policy: AddressPolicy,
}

/// Where a step must stop, and for which address it asks.
#[derive(Clone)]
struct StepContext {
    /// Shared by the probe's steps (five copies of its strings per probe otherwise).
    address: Arc<MailAddress>,
    deadline: Instant,
    phase_timeout: Duration,
    hop_budget: usize,
    lookups: Arc<HostLookups>,
    /// The probe's own connection slots, shared by its steps.
    probe_connections: Arc<Semaphore>,
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
        let limit = process_connection_limit(MAX_CONNECTIONS);
        Self {
            dns,
            tls,
            connector,
            microsoft365: Arc::new(Microsoft365Client::default()),
            aia: Arc::new(AiaCache::default()),
            shared: Arc::default(),
            kept: Arc::default(),
            lookups: Arc::default(),
            connections: Arc::new(Semaphore::new(limit)),
            connection_limit: limit,
            policy: AddressPolicy::default(),
        }
    }

    /// Which addresses the probe refuses to connect to (link-local, unspecified and multicast
    /// always; loopback and private ones too with `refuse_private`).
    pub fn with_address_policy(mut self, policy: AddressPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// At most `limit` connections open across every probe of this prober.
    pub fn with_connection_limit(mut self, limit: usize) -> Self {
        let limit = limit.max(1);
        self.connections = Arc::new(Semaphore::new(limit));
        self.connection_limit = limit;
        self
    }

    /// Keeps https connections open for the next request to the same server within `reuse_for`
    /// of their handshake and `idle_for` of their last answer (by default 10 s and 2 s); zero
    /// keeps none.
    pub fn with_kept_connections(mut self, reuse_for: Duration, idle_for: Duration) -> Self {
        self.kept = Arc::new(kept::KeptConnections::new(reuse_for, idle_for));
        self
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
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS_PER_PROBE));
        let (first, delegation) = tokio::join!(
            self.discover(address, options, deadline, MAX_HOPS, &slots),
            self.dns.lookup_delegation(
                address.domain().ascii(),
                options
                    .phase_timeout
                    .min(deadline.saturating_duration_since(Instant::now()))
            )
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
            discoveries.push(
                self.discover(&next, options, deadline, budget, &slots)
                    .await,
            );
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
        let probe_error = probe_error(&discoveries);
        let mut decision = verdict::decide(&discoveries, probe_error);
        let after = match (&decision.endpoint, probe_error) {
            (Some(endpoint), false) => {
                let ctx = StepContext {
                    address: Arc::new(
                        discoveries
                            .last()
                            .map_or_else(|| address.clone(), |d| d.address.clone()),
                    ),
                    deadline: deadline.min(Instant::now() + options.step_timeout),
                    phase_timeout: options.phase_timeout,
                    hop_budget: 0,
                    lookups: Arc::default(),
                    probe_connections: slots.clone(),
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
        slots: &Arc<Semaphore>,
    ) -> Discovery {
        let base = self.microsoft365.base_url();
        let lookups = Arc::new(HostLookups::default());
        let shared_address = Arc::new(address.clone());
        let run = |step: StepId| {
            let ctx = StepContext {
                address: shared_address.clone(),
                deadline: probe_deadline
                    .min(Instant::now() + options.step_timeout.min(LONGEST_BUDGET)),
                phase_timeout: options.phase_timeout,
                hop_budget,
                lookups: lookups.clone(),
                probe_connections: slots.clone(),
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

fn slots_closed() -> ConnectResult {
    ConnectResult::LocalError {
        detail: "connection slots closed".into(),
    }
}

/// A connection's slots: the probe's and the process's. Dropping them frees both.
pub(crate) struct ConnectionSlot {
    _probe: OwnedSemaphorePermit,
    /// Moves to a connection kept open after its request (`kept`).
    process: OwnedSemaphorePermit,
    /// Waiting for the process's slot shortened the connect budget: if the connect then times
    /// out, the exporter's load is to blame, not the address.
    pub(crate) squeezed: bool,
}

impl Prober {
    /// Waits (at most until the step's deadline) for a slot of the probe and one of the process.
    /// Running out of the probe's own slots is the step running out of time (the domain has many
    /// slow addresses); running out of the process's is a local failure.
    async fn connection_slot(&self, ctx: &StepContext) -> Result<ConnectionSlot, ConnectResult> {
        let closed = |_| slots_closed();
        let probe =
            tokio::time::timeout_at(ctx.deadline, ctx.probe_connections.clone().acquire_owned())
                .await
                .map_err(|_| ConnectResult::Timeout)?
                .map_err(closed)?;
        let (process, squeezed) = match self.connections.clone().try_acquire_owned() {
            Ok(permit) => (permit, false),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(slots_closed()),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let budget = ctx.phase();
                let permit =
                    tokio::time::timeout_at(ctx.deadline, self.connections.clone().acquire_owned())
                        .await
                        .map_err(|_| self.starved())?
                        .map_err(closed)?;
                (permit, ctx.phase() < budget)
            }
        };
        Ok(ConnectionSlot {
            _probe: probe,
            process,
            squeezed,
        })
    }

    /// One of the probe's own slots, for a request over a connection that already holds a slot
    /// of the process; `None` when the step's time ran out waiting.
    async fn probe_slot(&self, ctx: &StepContext) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout_at(ctx.deadline, ctx.probe_connections.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// An address not tried (or not given its full time) because every connection slot of the
    /// process was taken.
    fn starved(&self) -> ConnectResult {
        ConnectResult::LocalError {
            detail: format!(
                "no free connection slot in time: all {} connections of the exporter are in use",
                self.connection_limit
            ),
        }
    }
}

fn mark_refused(step: &mut StepTrace, refusal: RedirectRefusal) {
    step.status = StepStatus::RedirectInvalid;
    if let Some(hop) = step.hops.iter_mut().rev().find(|h| h.next.is_some()) {
        engine::refuse(hop, refusal);
    }
    // The redirects that led here were counted as finding the endpoint the refused answer
    // named: that chain now ends in the refusal. (Only one chain of a step can have ended in
    // `endpoint_found`: the step stops there.)
    for hop in &mut step.hops {
        if hop.status == StepStatus::EndpointFound {
            hop.status = StepStatus::RedirectInvalid;
        }
        for attempt in &mut hop.addresses {
            if attempt.status == StepStatus::EndpointFound {
                attempt.status = StepStatus::RedirectInvalid;
            }
        }
    }
}

/// The probe could not run: no DNS server answered, or a resource of this machine ran out.
fn probe_error(discoveries: &[Discovery]) -> bool {
    let steps = || discoveries.iter().flat_map(|d| d.steps.iter());
    verdict::resolver_unusable(steps()) || verdict::local_failure(steps()).is_some()
}
