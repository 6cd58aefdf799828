//! `srv_record`: `_autodiscover._tcp.D`, then the POX POST to the targets in RFC 2782 order.

use crate::model::facts::{HopOrigin, StepTrace};
use crate::model::step::{StepId, StepStatus};
use crate::probe::{Prober, StepContext};
use crate::protocol::{redirect, srv};

pub(super) async fn run(
    prober: &Prober,
    step: StepId,
    url: String,
    ctx: &StepContext,
) -> StepTrace {
    let name = srv::srv_name(ctx.address.domain().ascii());
    let lookup = prober.dns.lookup_srv(&name, ctx.phase()).await;
    let usable = srv::usable(&lookup.records);
    let mut hops = Vec::new();
    let mut status = if lookup.answer.is_negative() || !lookup.records.is_empty() {
        StepStatus::DnsNoRecord
    } else {
        StepStatus::DnsError
    };
    let mut first_status = None;
    for record in usable {
        if ctx.phase().is_zero() {
            // The step's budget is spent: the remaining targets are not tried.
            first_status.get_or_insert(StepStatus::Timeout);
            break;
        }
        let target_url = redirect::https_url(&record.target);
        let origin = HopOrigin::SrvTarget {
            record: record.clone(),
        };
        let target_status = prober
            .follow_chain(target_url, origin, ctx, &mut hops)
            .await;
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
    let mut trace = StepTrace::new(step, url, status);
    trace.srv = Some(lookup);
    trace.hops = hops;
    trace
}
