//! `root_domain`, `autodiscover_domain`: the POX POST to the step URL, redirects followed.

use crate::model::facts::{HopOrigin, StepTrace};
use crate::model::step::StepId;
use crate::probe::{Prober, StepContext};

pub(super) async fn run(
    prober: &Prober,
    step: StepId,
    url: String,
    ctx: &StepContext,
) -> StepTrace {
    let mut hops = Vec::new();
    let status = prober
        .follow_chain(url.clone(), HopOrigin::Start, ctx, &mut hops)
        .await;
    let mut trace = StepTrace::new(step, url, status);
    trace.hops = hops;
    trace
}
