//! `http_redirect`: an unauthenticated GET on port 80; only a redirect to an https
//! Autodiscover URL counts, and it is followed with the POX POST.

use crate::model::facts::HopOrigin;
use crate::model::facts::{HopNext, StepTrace};
use crate::model::step::{StepId, StepStatus};
use crate::probe::engine::backfill;
use crate::probe::{Prober, StepContext};
use crate::protocol::classify::Request;

pub(super) async fn run(
    prober: &Prober,
    step: StepId,
    url: String,
    ctx: &StepContext,
) -> StepTrace {
    let (mut first, result) = prober
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
            let status = prober.follow_chain(target, origin, ctx, &mut hops).await;
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
    let mut trace = StepTrace::new(step, url, status);
    trace.hops = hops;
    trace
}
