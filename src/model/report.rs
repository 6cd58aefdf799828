//! The result of one probe, as every renderer (metrics, trace, JSON, HTML) sees it.

use super::address::{Domain, MailAddress};
use super::facts::{Delegation, SrvRecord, StepTrace};
use super::finding::Finding;
use super::settings::{CredentialsUse, ServiceCheck, ServicePrompt, Settings, SettingsSource};
use super::step::{Outcome, StepId};
use serde::{Deserialize, Serialize};

/// Everything one probe found out about one address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The probed address.
    pub address: MailAddress,
    /// Its domain.
    pub domain: Domain,
    /// The verdict.
    pub outcome: Outcome,
    /// Where Outlook finds its endpoint.
    pub endpoint: Option<Endpoint>,
    /// Steps with a certificate alert, in Outlook's order.
    pub certificate_prompts: Vec<StepId>,
    /// Outlook asks to allow a redirect.
    pub redirect_prompt: bool,
    /// The SRV record of the domain.
    pub srv: SrvSummary,
    /// The steps for the probed address.
    pub steps: Vec<StepTrace>,
    /// Redirect hops (URL redirects within steps, address redirects between discoveries).
    pub redirects: Vec<RedirectHop>,
    /// Discoveries restarted by `redirectAddr` answers, in order.
    pub restarted: Vec<Discovery>,
    /// The settings the endpoint announced (a 200 `settings` answer, unauthenticated or after
    /// the configured credentials), when it announced any.
    #[serde(default)]
    pub settings: Option<Settings>,
    /// Where the settings came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_source: Option<SettingsSource>,
    /// The service endpoints named by the settings, as checked.
    #[serde(default)]
    pub services: Vec<ServiceCheck>,
    /// Service endpoints where Outlook shows a certificate alert, apart from the step prompts.
    #[serde(default)]
    pub service_certificate_prompts: Vec<ServicePrompt>,
    /// What the probe did with the configured credentials (none configured: absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsUse>,
    /// What is wrong and how to fix it.
    pub findings: Vec<Finding>,
    /// The DNS servers the probe asked.
    pub resolver: String,
    /// The domain's NS set and SOA, as the configured resolver answers them.
    #[serde(default)]
    pub delegation: Option<Delegation>,
    /// When the probe started, Unix seconds.
    pub started_at: i64,
    /// How long the probe took.
    pub duration_seconds: f64,
}

impl ProbeReport {
    /// An endpoint was found and no certificate prompt happened on the way.
    pub fn success(&self) -> bool {
        matches!(self.outcome, Outcome::Ok | Outcome::RedirectPrompt)
    }

    /// When the probe finished, Unix seconds.
    pub fn finished_at(&self) -> f64 {
        self.started_at as f64 + self.duration_seconds
    }

    /// The trace of one step of the probed address.
    pub fn step(&self, step: StepId) -> Option<&StepTrace> {
        self.steps.iter().find(|s| s.step == step)
    }

    /// Every discovery, the probed address's first.
    pub fn discoveries(&self) -> impl Iterator<Item = (&MailAddress, &[StepTrace])> {
        std::iter::once((&self.address, self.steps.as_slice())).chain(
            self.restarted
                .iter()
                .map(|d| (&d.address, d.steps.as_slice())),
        )
    }
}

/// One run of the steps for one address. A `redirectAddr` answer starts another one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    /// The address discovered.
    pub address: MailAddress,
    /// Its domain.
    pub domain: Domain,
    /// The steps, in Outlook's order.
    pub steps: Vec<StepTrace>,
}

/// Where Outlook finds its endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The step (of the last discovery, after address redirects).
    pub step: StepId,
    /// The URL that answered.
    pub url: String,
}

/// The SRV record as the report's summary shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrvSummary {
    /// A record a client would use exists (a real target on port 443).
    pub present: bool,
    /// Every record, in the order clients try them.
    pub records: Vec<SrvRecord>,
}

/// One redirect hop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RedirectHop {
    /// An HTTP or `redirectUrl` redirect.
    Url {
        /// The step it happened in.
        step: StepId,
        /// From this URL.
        from: String,
        /// To this URL.
        to: String,
    },
    /// A `redirectAddr` answer: discovery restarted for another address.
    Address {
        /// The step it happened in.
        step: StepId,
        /// From this address.
        from: String,
        /// To this address.
        to: String,
    },
}
