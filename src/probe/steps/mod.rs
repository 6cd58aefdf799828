//! One runner per kind of step request (`StepRequest`); the step table says which kind each
//! step is. A new step of an existing kind is one row in `model::step`; a new kind is one row
//! plus one file here.

mod http_redirect;
mod microsoft365;
mod post;
mod srv_record;

use super::{Prober, StepContext};
use crate::model::facts::StepTrace;
use crate::model::step::{StepRequest, StepSpec};

/// Runs the step `spec`, starting at `url` (from the table).
pub(super) async fn run(
    prober: &Prober,
    spec: &StepSpec,
    url: String,
    ctx: &StepContext,
) -> StepTrace {
    match spec.request {
        StepRequest::Microsoft365Query => microsoft365::run(prober, spec.id, url, ctx).await,
        StepRequest::HttpsPost => post::run(prober, spec.id, url, ctx).await,
        StepRequest::HttpGetThenPost => http_redirect::run(prober, spec.id, url, ctx).await,
        StepRequest::SrvLookup => srv_record::run(prober, spec.id, url, ctx).await,
    }
}
