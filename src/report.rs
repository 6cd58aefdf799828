//! The result of one probe, as every renderer (metrics, trace, JSON, HTML) sees it.

use crate::autodiscover::facts::{SrvLookup, SrvRecord, StepTrace};
use crate::autodiscover::srv;
use crate::autodiscover::step::{Outcome, StepId};
use crate::autodiscover::verdict::{Discovery, Endpoint};
use crate::findings::Finding;
use serde::{Deserialize, Serialize};

/// Everything one probe found out about one address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The probed address.
    pub address: String,
    /// Its domain.
    pub domain: String,
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
    /// The four steps for the probed address.
    pub steps: Vec<StepTrace>,
    /// Redirect hops (URL redirects within steps, address redirects between discoveries).
    pub redirects: Vec<RedirectHop>,
    /// Discoveries restarted by `redirectAddr` answers, in order.
    pub restarted: Vec<Discovery>,
    /// What is wrong and how to fix it.
    pub findings: Vec<Finding>,
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
    pub fn discoveries(&self) -> impl Iterator<Item = (&str, &[StepTrace])> {
        std::iter::once((self.address.as_str(), self.steps.as_slice())).chain(
            self.restarted
                .iter()
                .map(|d| (d.address.as_str(), d.steps.as_slice())),
        )
    }
}

/// The SRV record as the report's summary shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrvSummary {
    /// A record a client would use exists (a real target on port 443).
    pub present: bool,
    /// Every record, in the order clients try them.
    pub records: Vec<SrvRecord>,
}

impl SrvSummary {
    /// Summarises a lookup.
    pub fn from_lookup(lookup: &SrvLookup) -> Self {
        Self {
            present: !srv::usable(&lookup.records).is_empty(),
            records: srv::ordered(&lookup.records),
        }
    }
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
