//! `microsoft365`: ask Microsoft 365 about the mailbox (politely: cache, rate limit,
//! throttling), then POST the POX request to the URL it names with the usual endpoint rules.

use crate::model::facts::{
    AddressAttempt, ConnectResult, Hop, HopOrigin, Microsoft365Answer, Microsoft365Query,
    QuerySource, StepTrace,
};
use crate::model::step::{StepId, StepStatus};
use crate::probe::engine::{backfill, refuse};
use crate::probe::{Prober, StepContext};
use crate::protocol::classify::{self, AddressResult, Request};
use crate::protocol::{microsoft365, redirect};
use std::time::Duration;

pub(super) async fn run(
    prober: &Prober,
    step: StepId,
    url: String,
    ctx: &StepContext,
) -> StepTrace {
    let client = prober.microsoft365();
    let key = ctx.address.ascii().to_lowercase();
    let mut hops = Vec::new();
    let reuse = |source: QuerySource| {
        let known = client.known(&key);
        Microsoft365Query {
            source,
            age_seconds: known.as_ref().map_or(0, |(_, age)| age.as_secs()),
            answer: known.map(|(answer, _)| answer),
        }
    };
    let mut failure_status = None;
    let query = if let Some((answer, age)) = client.fresh(&key) {
        Microsoft365Query {
            source: QuerySource::Cached,
            answer: Some(answer),
            age_seconds: age.as_secs(),
        }
    } else if client.paused() {
        failure_status = Some(StepStatus::HttpStatus);
        reuse(QuerySource::Throttled)
    } else if let Some(status) = client.unreachable() {
        failure_status = Some(status);
        reuse(QuerySource::Failed)
    } else {
        match ask(prober, &url, ctx).await {
            Asked::NoSlot => {
                failure_status = Some(StepStatus::Timeout);
                reuse(QuerySource::RateLimited)
            }
            Asked::Hop(hop) => {
                let exchange = hop
                    .addresses
                    .iter()
                    .find_map(|a| a.http.as_ref())
                    .filter(|e| e.status.is_some());
                let query = match exchange {
                    Some(exchange) if microsoft365::is_throttled(exchange) => {
                        client.mark_reachable();
                        client.pause(exchange.retry_after_seconds);
                        failure_status = Some(StepStatus::HttpStatus);
                        reuse(QuerySource::Throttled)
                    }
                    Some(exchange) => {
                        client.mark_reachable();
                        let answer = microsoft365::answer_of(exchange);
                        client.remember(&key, answer.clone());
                        Microsoft365Query {
                            source: QuerySource::Queried,
                            answer: Some(answer),
                            age_seconds: 0,
                        }
                    }
                    None => {
                        client.mark_unreachable(hop.status);
                        failure_status = Some(hop.status);
                        reuse(QuerySource::Failed)
                    }
                };
                hops.push(*hop);
                query
            }
        }
    };
    client.count(query.source);
    let status = match &query.answer {
        Some(Microsoft365Answer::Known { url: target }) => {
            match redirect::validate_target(&url, target) {
                Ok(target) => {
                    let status = prober
                        .follow_chain(target, HopOrigin::Microsoft365, ctx, &mut hops)
                        .await;
                    backfill(&mut hops[..1], status);
                    status
                }
                Err(refusal) => {
                    if let Some(hop) = hops.first_mut() {
                        refuse(hop, refusal);
                    }
                    StepStatus::RedirectInvalid
                }
            }
        }
        // A reused answer stands for the query that could not be made.
        Some(Microsoft365Answer::Unknown { status }) => *status,
        None => failure_status.unwrap_or(StepStatus::Timeout),
    };
    let mut trace = StepTrace::new(step, url, status);
    trace.microsoft365 = Some(query);
    trace.hops = hops;
    trace
}

/// What asking the service came to.
enum Asked {
    /// The rate limit left no slot within the step's budget: nothing was sent.
    NoSlot,
    /// The query's hop (its DNS lookup, and the addresses tried when the name resolved).
    Hop(Box<Hop>),
}

/// The JSON query. The name is resolved first (a failed lookup sends nothing to Microsoft, so it
/// takes no slot of the rate limit); addresses are then tried one after another until one
/// connects, as a browser would (asking every address of a shared service would multiply the
/// load on it).
async fn ask(prober: &Prober, url: &str, ctx: &StepContext) -> Asked {
    let (mut hop, addresses) = prober.resolve(url, HopOrigin::Start, ctx).await;
    if let Some(status) = hop.lookup.as_ref().and_then(|l| l.failure_status()) {
        hop.status = status;
        return Asked::Hop(Box::new(hop));
    }
    // Nothing to connect to (no time left, or only refused addresses): nothing is sent either.
    if addresses.is_empty() {
        return Asked::Hop(Box::new(hop));
    }
    if !prober.microsoft365().slot(ctx.deadline).await {
        return Asked::NoSlot;
    }
    let host = hop.host();
    let mut attempts: Vec<AddressAttempt> = Vec::new();
    let mut results: Vec<AddressResult> = Vec::new();
    for address in addresses {
        if ctx.phase() == Duration::ZERO {
            break;
        }
        let (attempt, result) = prober
            .attempt(url, &host, address, Request::Microsoft365Get, ctx)
            .await;
        let connected = attempt.connect == ConnectResult::Connected;
        attempts.push(attempt);
        results.push(result);
        if connected {
            break;
        }
    }
    let result = classify::aggregate(&results);
    hop.addresses = attempts;
    hop.status = result.status.unwrap_or(StepStatus::EndpointFound);
    hop.next = result.next;
    hop.redirect_refused = result.refused;
    Asked::Hop(Box::new(hop))
}
