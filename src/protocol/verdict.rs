//! The verdict: which step Outlook ends on, which prompts it shows on the way.

use crate::model::facts::{ConnectResult, HopNext, StepTrace};
use crate::model::report::{Discovery, Endpoint};
use crate::model::settings::{ServiceCheck, ServicePrompt};
use crate::model::step::{Outcome, StepId, StepStatus};
use serde::{Deserialize, Serialize};

/// What Outlook ends up doing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The verdict.
    pub outcome: Outcome,
    /// The endpoint, when one is found.
    pub endpoint: Option<Endpoint>,
    /// Steps with a certificate alert, in the order Outlook meets them.
    pub certificate_prompts: Vec<StepId>,
    /// Outlook asks the user to allow a redirect on the way to the endpoint.
    pub redirect_prompt: bool,
    /// Service endpoints named by the settings where Outlook shows a certificate alert.
    pub service_certificate_prompts: Vec<ServicePrompt>,
}

/// Decides from the discoveries of one probe. Steps are walked in Outlook's order; the first
/// step that finds an endpoint behind a valid certificate ends the walk (or hands over to the
/// next discovery after a `redirectAddr`); certificate prompts count up to there.
pub fn decide(discoveries: &[Discovery], probe_error: bool) -> Decision {
    let steps: Vec<&[StepTrace]> = discoveries.iter().map(|d| d.steps.as_slice()).collect();
    walk(&steps, probe_error, None)
}

/// The decision for one discovery's `steps` as a client that never takes step `skipped` sees
/// it (the classic clients, which do not ask Microsoft 365).
pub fn decide_without(steps: &[StepTrace], skipped: StepId) -> Decision {
    walk(&[steps], false, Some(skipped))
}

fn walk(discoveries: &[&[StepTrace]], probe_error: bool, skipped: Option<StepId>) -> Decision {
    let mut prompts: Vec<StepId> = Vec::new();
    let mut endpoint = None;
    let mut redirect_prompt = false;
    'discoveries: for (index, steps) in discoveries.iter().enumerate() {
        for step in steps.iter().filter(|step| Some(step.step) != skipped) {
            if step.status.is_certificate_prompt() {
                if !prompts.contains(&step.step) {
                    prompts.push(step.step);
                }
                continue;
            }
            if step.status != StepStatus::EndpointFound {
                continue;
            }
            redirect_prompt |= step.step.prompts_for_redirect();
            let restarts = matches!(
                step.final_hop().and_then(|h| h.next.as_ref()),
                Some(HopNext::Address { .. })
            );
            if restarts && index + 1 < discoveries.len() {
                continue 'discoveries;
            }
            endpoint = step.final_hop().map(|hop| Endpoint {
                step: step.step,
                url: hop.url.clone(),
            });
            break 'discoveries;
        }
        // No step of this discovery handed over to the next one: the walk ends here.
        break;
    }
    if endpoint.is_none() {
        redirect_prompt = false;
    }
    let outcome = if probe_error {
        Outcome::ProbeError
    } else if !prompts.is_empty() {
        Outcome::CertificatePrompt
    } else if endpoint.is_none() {
        Outcome::NotFound
    } else if redirect_prompt {
        Outcome::RedirectPrompt
    } else {
        Outcome::Ok
    };
    Decision {
        outcome,
        endpoint,
        certificate_prompts: prompts,
        redirect_prompt,
        service_certificate_prompts: Vec::new(),
    }
}

/// Adds what Outlook meets after Autodiscover: every service endpoint whose certificate fails
/// is a certificate prompt (once per service and host), and makes the outcome
/// `certificate_prompt` unless the probe could not run at all. A service endpoint this machine
/// could not look at (no file descriptor, no connection slot) makes it `probe_error`, as for
/// the steps: its status says nothing about the domain.
pub fn add_services(decision: &mut Decision, services: &[ServiceCheck]) {
    if service_local_failure(services).is_some() {
        decision.outcome = Outcome::ProbeError;
    }
    for check in services {
        if !check.status.is_certificate_prompt() {
            continue;
        }
        let prompt = ServicePrompt {
            service: check.target.service,
            host: check.target.host.clone(),
        };
        if !decision.service_certificate_prompts.contains(&prompt) {
            decision.service_certificate_prompts.push(prompt);
        }
    }
    if !decision.service_certificate_prompts.is_empty() && decision.outcome != Outcome::ProbeError {
        decision.outcome = Outcome::CertificatePrompt;
    }
}

/// No DNS server answered any question of these steps (every answer a timeout or unreachable):
/// the resolver itself is not usable.
pub fn resolver_unusable<'a>(steps: impl IntoIterator<Item = &'a StepTrace>) -> bool {
    let mut any = false;
    for step in steps {
        let lookups = step.hops.iter().filter_map(|h| h.lookup.as_ref());
        let answers = step
            .srv
            .iter()
            .map(|srv| &srv.answer)
            .chain(lookups.flat_map(|l| [&l.a, &l.aaaa]));
        for answer in answers {
            if !answer.is_transport_failure() {
                return false;
            }
            any = true;
        }
    }
    any
}

/// The first failure of these steps that happened on this machine (no file descriptor, no
/// buffer space, no connection slot): the probe could not look, so nothing may be concluded
/// about the domain.
pub fn local_failure<'a>(steps: impl IntoIterator<Item = &'a StepTrace>) -> Option<String> {
    for step in steps {
        let dns = step.srv.iter().map(|srv| &srv.answer).chain(
            step.hops
                .iter()
                .filter_map(|h| h.lookup.as_ref())
                .flat_map(|l| [&l.a, &l.aaaa]),
        );
        for answer in dns {
            if answer.is_local_failure() {
                return Some(answer.describe());
            }
        }
        for (_, attempt) in step.addresses() {
            if let ConnectResult::LocalError { detail } = &attempt.connect {
                return Some(format!("{}: {detail}", attempt.address));
            }
        }
    }
    None
}

/// The first failure of these service checks that happened on this machine, as
/// [`local_failure`] finds them for the steps.
pub fn service_local_failure(services: &[ServiceCheck]) -> Option<String> {
    for check in services {
        let lookup = check.lookup.iter().flat_map(|l| [&l.a, &l.aaaa]);
        for answer in lookup {
            if answer.is_local_failure() {
                return Some(format!("{}: {}", check.target.host, answer.describe()));
            }
        }
        for attempt in &check.addresses {
            if let ConnectResult::LocalError { detail } = &attempt.connect {
                return Some(format!(
                    "{} ({} {}): {detail}",
                    attempt.address, check.target.service, check.target.host
                ));
            }
        }
    }
    None
}

/// The step whose `redirectAddr` answer ends this discovery, with the new address, if the walk
/// in Outlook's order reaches one before any other endpoint.
pub fn pending_restart(discovery: &Discovery) -> Option<(usize, String)> {
    let index = discovery
        .steps
        .iter()
        .position(|s| s.status == StepStatus::EndpointFound)?;
    match discovery.steps[index]
        .final_hop()
        .and_then(|h| h.next.as_ref())
    {
        Some(HopNext::Address { address }) => Some((index, address.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::address::MailAddress;
    use crate::model::facts::{Hop, HopOrigin, StepTrace};
    use StepStatus::*;

    fn step(step: StepId, status: StepStatus) -> StepTrace {
        let url = format!("https://{}/Autodiscover/Autodiscover.xml", step.as_str());
        let mut trace = StepTrace::new(step, url.clone(), status);
        trace.hops = vec![Hop {
            url,
            origin: HopOrigin::Start,
            lookup: None,
            addresses: vec![],
            status,
            next: None,
            redirect_refused: None,
            refused_addresses: vec![],
        }];
        trace
    }

    fn address(text: &str) -> MailAddress {
        MailAddress::parse(text).unwrap()
    }

    fn discovery(statuses: [StepStatus; 5]) -> Discovery {
        let address = address("user@d.example");
        Discovery {
            domain: address.domain().clone(),
            address,
            steps: StepId::ALL
                .iter()
                .zip(statuses)
                .map(|(s, st)| step(*s, st))
                .collect(),
        }
    }

    /// Step statuses, expected outcome, expected endpoint step, expected prompts.
    type Case = ([StepStatus; 5], Outcome, Option<StepId>, Vec<StepId>);

    #[test]
    fn table_of_step_statuses_to_outcome() {
        let cases: Vec<Case> = vec![
            // Microsoft 365 knows the mailbox: Outlook stops there, the classic prompt is unseen
            (
                [
                    EndpointFound,
                    CertNameMismatch,
                    DnsNoRecord,
                    DnsNoRecord,
                    EndpointFound,
                ],
                Outcome::Ok,
                Some(StepId::Microsoft365),
                vec![],
            ),
            // a TLS-inspecting proxy in front of the URL Microsoft 365 names
            (
                [
                    CertUntrusted,
                    DnsNoRecord,
                    EndpointFound,
                    DnsNoRecord,
                    DnsNoRecord,
                ],
                Outcome::CertificatePrompt,
                Some(StepId::AutodiscoverDomain),
                vec![StepId::Microsoft365],
            ),
            // Microsoft 365 timed out: the classic steps decide
            (
                [
                    Timeout,
                    DnsNoRecord,
                    EndpointFound,
                    DnsNoRecord,
                    DnsNoRecord,
                ],
                Outcome::Ok,
                Some(StepId::AutodiscoverDomain),
                vec![],
            ),
            (
                [
                    HttpStatus,
                    EndpointFound,
                    DnsNoRecord,
                    DnsNoRecord,
                    DnsNoRecord,
                ],
                Outcome::Ok,
                Some(StepId::RootDomain),
                vec![],
            ),
            (
                [
                    HttpStatus,
                    DnsNoRecord,
                    EndpointFound,
                    DnsNoRecord,
                    DnsNoRecord,
                ],
                Outcome::Ok,
                Some(StepId::AutodiscoverDomain),
                vec![],
            ),
            (
                [
                    HttpStatus,
                    HttpStatus,
                    NotAutodiscover,
                    EndpointFound,
                    DnsNoRecord,
                ],
                Outcome::RedirectPrompt,
                Some(StepId::HttpRedirect),
                vec![],
            ),
            (
                [
                    HttpStatus,
                    ConnectRefused,
                    DnsNoRecord,
                    DnsNoRecord,
                    EndpointFound,
                ],
                Outcome::RedirectPrompt,
                Some(StepId::SrvRecord),
                vec![],
            ),
            // the seed: the bare domain presents the web site's certificate, SRV is fine
            (
                [
                    HttpStatus,
                    CertNameMismatch,
                    DnsNoRecord,
                    DnsNoRecord,
                    EndpointFound,
                ],
                Outcome::CertificatePrompt,
                Some(StepId::SrvRecord),
                vec![StepId::RootDomain],
            ),
            (
                [
                    HttpStatus,
                    DnsNoRecord,
                    CertExpired,
                    DnsNoRecord,
                    DnsNoRecord,
                ],
                Outcome::CertificatePrompt,
                None,
                vec![StepId::AutodiscoverDomain],
            ),
            (
                [
                    HttpStatus,
                    DnsNoRecord,
                    CertUntrusted,
                    DnsNoRecord,
                    DnsNoRecord,
                ],
                Outcome::CertificatePrompt,
                None,
                vec![StepId::AutodiscoverDomain],
            ),
            (
                [
                    HttpStatus,
                    CertNotYetValid,
                    EndpointFound,
                    DnsNoRecord,
                    DnsNoRecord,
                ],
                Outcome::CertificatePrompt,
                Some(StepId::AutodiscoverDomain),
                vec![StepId::RootDomain],
            ),
            // prompts after the endpoint are never reached
            (
                [
                    HttpStatus,
                    EndpointFound,
                    CertNameMismatch,
                    DnsNoRecord,
                    DnsNoRecord,
                ],
                Outcome::Ok,
                Some(StepId::RootDomain),
                vec![],
            ),
            (
                [
                    HttpStatus,
                    DnsNoRecord,
                    DnsNoRecord,
                    DnsNoRecord,
                    DnsNoRecord,
                ],
                Outcome::NotFound,
                None,
                vec![],
            ),
            (
                [
                    HttpStatus,
                    DnsError,
                    Timeout,
                    TlsHandshakeFailed,
                    RedirectInvalid,
                ],
                Outcome::NotFound,
                None,
                vec![],
            ),
            (
                [Excluded, Excluded, Excluded, Excluded, EndpointFound],
                Outcome::RedirectPrompt,
                Some(StepId::SrvRecord),
                vec![],
            ),
            (
                [Excluded, Excluded, Excluded, Excluded, Excluded],
                Outcome::NotFound,
                None,
                vec![],
            ),
        ];
        for (statuses, outcome, endpoint_step, prompts) in cases {
            let decision = decide(&[discovery(statuses)], false);
            assert_eq!(decision.outcome, outcome, "{statuses:?}");
            assert_eq!(
                decision.endpoint.as_ref().map(|e| e.step),
                endpoint_step,
                "{statuses:?}"
            );
            assert_eq!(decision.certificate_prompts, prompts, "{statuses:?}");
            assert_eq!(
                decision.redirect_prompt,
                endpoint_step.is_some_and(StepId::prompts_for_redirect),
                "{statuses:?}"
            );
        }
    }

    fn service(
        kind: crate::model::settings::ServiceKind,
        host: &str,
        status: crate::model::settings::ServiceStatus,
    ) -> ServiceCheck {
        use crate::model::settings::{ServiceTarget, TlsMode};
        ServiceCheck {
            target: ServiceTarget {
                service: kind,
                protocol: "https".into(),
                host: host.into(),
                port: 443,
                url: None,
                tls: TlsMode::Implicit,
                named_by: vec![],
                external: true,
            },
            lookup: None,
            addresses: vec![],
            status,
            duration_seconds: 0.0,
        }
    }

    #[test]
    fn a_service_certificate_failure_is_a_certificate_prompt() {
        use crate::model::settings::{ServiceKind, ServiceStatus};
        let mut decision = decide(
            &[discovery([
                HttpStatus,
                DnsNoRecord,
                EndpointFound,
                DnsNoRecord,
                DnsNoRecord,
            ])],
            false,
        );
        assert_eq!(decision.outcome, Outcome::Ok);
        let healthy = [
            service(ServiceKind::Oab, "mail.x", ServiceStatus::Ok),
            service(ServiceKind::Imap, "imap.x", ServiceStatus::ConnectRefused),
        ];
        add_services(&mut decision, &healthy);
        assert_eq!(decision.outcome, Outcome::Ok);
        assert!(decision.service_certificate_prompts.is_empty());
        let broken = [
            service(ServiceKind::Ews, "mail.x", ServiceStatus::CertNameMismatch),
            service(ServiceKind::Ews, "mail.x", ServiceStatus::CertExpired),
            service(ServiceKind::Smtp, "smtp.x", ServiceStatus::CertUntrusted),
        ];
        add_services(&mut decision, &broken);
        assert_eq!(decision.outcome, Outcome::CertificatePrompt);
        assert_eq!(
            decision.service_certificate_prompts,
            vec![
                ServicePrompt {
                    service: ServiceKind::Ews,
                    host: "mail.x".into()
                },
                ServicePrompt {
                    service: ServiceKind::Smtp,
                    host: "smtp.x".into()
                }
            ]
        );
        // the endpoint and the step prompts stay as Outlook's walk found them
        assert_eq!(
            decision.endpoint.as_ref().map(|e| e.step),
            Some(StepId::AutodiscoverDomain)
        );
        assert!(decision.certificate_prompts.is_empty());
        let mut failed = decide(&[discovery([DnsError; 5])], true);
        add_services(&mut failed, &broken);
        assert_eq!(failed.outcome, Outcome::ProbeError);
    }

    #[test]
    fn probe_error_wins() {
        let decision = decide(
            &[discovery([
                HttpStatus, DnsError, DnsError, DnsError, DnsError,
            ])],
            true,
        );
        assert_eq!(decision.outcome, Outcome::ProbeError);
    }

    #[test]
    fn redirect_addr_hands_over_to_the_next_discovery() {
        let mut first = discovery([
            HttpStatus,
            CertNameMismatch,
            EndpointFound,
            DnsNoRecord,
            DnsNoRecord,
        ]);
        first.steps[2].hops[0].next = Some(HopNext::Address {
            address: "user@tenant.example".into(),
        });
        let mut second = discovery([
            HttpStatus,
            DnsNoRecord,
            DnsNoRecord,
            DnsNoRecord,
            EndpointFound,
        ]);
        second.address = address("user@tenant.example");
        let decision = decide(&[first.clone(), second], false);
        assert_eq!(
            decision.endpoint.as_ref().map(|e| e.step),
            Some(StepId::SrvRecord)
        );
        assert_eq!(decision.certificate_prompts, vec![StepId::RootDomain]);
        assert!(decision.redirect_prompt);
        assert_eq!(decision.outcome, Outcome::CertificatePrompt);
        // without a restarted discovery the redirecting step is the endpoint
        let alone = decide(&[first], false);
        assert_eq!(
            alone.endpoint.map(|e| e.step),
            Some(StepId::AutodiscoverDomain)
        );
    }
}
