//! Findings about Microsoft 365's shortcut (SPEC §3.1): when it hides what classic clients
//! meet, and when a cloud mailbox's own `autodiscover.` record does not lead to Microsoft.

use super::Findings;
use crate::model::facts::{Microsoft365Answer, url_host};
use crate::model::finding::{FindingCode, Severity};
use crate::model::report::ProbeReport;
use crate::model::step::{Outcome, StepId, StepStatus};
use crate::protocol::verdict;

/// Where Microsoft 365 expects `autodiscover.D` to point.
const MICROSOFT_AUTODISCOVER: &str = "autodiscover.outlook.com";

pub(super) fn explain(out: &mut Findings, report: &ProbeReport) {
    if report.endpoint.as_ref().map(|e| e.step) == Some(StepId::Microsoft365) {
        explain_classic_path(out, report);
    }
    explain_autodiscover_record(out, report);
}

/// The verdict the classic steps alone give, for the clients that never ask Microsoft 365.
fn classic_decision(report: &ProbeReport) -> verdict::Decision {
    verdict::decide_without(&report.steps, StepId::Microsoft365)
}

fn explain_classic_path(out: &mut Findings, report: &ProbeReport) {
    let classic = classic_decision(report);
    if classic.outcome >= report.outcome {
        return;
    }
    let domain = &report.domain;
    let (severity, what) = match classic.outcome {
        Outcome::CertificatePrompt => {
            let steps: Vec<&str> = classic
                .certificate_prompts
                .iter()
                .map(|s| s.as_str())
                .collect();
            (
                Severity::Warning,
                format!("see a certificate security alert ({})", steps.join(", ")),
            )
        }
        Outcome::NotFound => (
            Severity::Warning,
            "find no Autodiscover service at all".to_owned(),
        ),
        Outcome::RedirectPrompt => (Severity::Info, "are asked to allow a redirect".to_owned()),
        Outcome::ProbeError | Outcome::Ok => return,
    };
    let hint = if classic.certificate_prompts.contains(&StepId::RootDomain) {
        format!(
            "Fix the classic path as well: remove the A/AAAA record of {domain} (or close port \
             443 there, or add {domain} to that certificate), and publish autodiscover.{domain} \
             CNAME {MICROSOFT_AUTODISCOVER}."
        )
    } else {
        format!(
            "Fix the classic path as well (see the findings of its steps); for Exchange Online, \
             publish autodiscover.{domain} CNAME {MICROSOFT_AUTODISCOVER}."
        )
    };
    out.push(
        severity,
        FindingCode::ClassicClientsAffected,
        format!(
            "Outlook for Windows (2016 and later) finds {} through Microsoft 365 and shows no \
             alert. Clients that skip that shortcut — Outlook 2013 and older, Outlook with the \
             ExcludeExplicitO365Endpoint policy, iOS and macOS Mail (which fail outright on a \
             wrong certificate name at https://{domain}/Autodiscover, KB 3150466) and other \
             classic Autodiscover clients — {what}.",
            report.address
        ),
        hint,
    );
}

fn explain_autodiscover_record(out: &mut Findings, report: &ProbeReport) {
    let Some(step) = report.step(StepId::Microsoft365) else {
        return;
    };
    let Some(Microsoft365Answer::Known { url }) =
        step.microsoft365.as_ref().and_then(|q| q.answer.as_ref())
    else {
        return;
    };
    // Only a mailbox Microsoft hosts: a hybrid answer names the on-premises server, and there
    // autodiscover.D rightly points on premises.
    if url_host(url) != url_host(&step.url) {
        return;
    }
    let Some(autodiscover) = report.step(StepId::AutodiscoverDomain) else {
        return;
    };
    if autodiscover.status == StepStatus::Excluded {
        return;
    }
    let lookup = autodiscover.hops.first().and_then(|h| h.lookup.as_ref());
    let target = lookup
        .and_then(|l| l.cname_chain.first())
        .map(|c| c.target.as_str());
    if target.is_some_and(|t| {
        t.trim_end_matches('.')
            .eq_ignore_ascii_case(MICROSOFT_AUTODISCOVER)
    }) {
        return;
    }
    let host = format!("autodiscover.{}", report.domain.ascii());
    let now = match (target, lookup) {
        (Some(target), _) => format!("is a CNAME to {target}"),
        (None, Some(lookup)) if !lookup.addresses.is_empty() => {
            format!("has its own address ({})", lookup.addresses[0])
        }
        _ => "does not exist".to_owned(),
    };
    out.push(
        Severity::Warning,
        FindingCode::AutodiscoverNotMicrosoft365,
        format!(
            "Microsoft 365 hosts {}, but {host} {now}: clients that skip the Microsoft 365 \
             shortcut do not find Exchange Online there.",
            report.address
        ),
        format!(
            "Publish {host} CNAME {MICROSOFT_AUTODISCOVER}, as the Microsoft 365 admin center \
             lists it for the domain."
        ),
    );
}
