#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Every scenario of the simulated world, probed through real DNS, TLS and HTTP.

mod support;

use autodiscover_exporter::config::Config;
use autodiscover_exporter::diagnose::{self, Expectations};
use autodiscover_exporter::exporter::store;
use autodiscover_exporter::lab::scenarios::{self, EXCHANGE_HOST};
use autodiscover_exporter::model::address::MailAddress;
use autodiscover_exporter::model::report::{ProbeReport, RedirectHop};
use autodiscover_exporter::model::step::{Outcome, StepId, StepStatus};
use std::sync::Arc;

fn codes(report: &ProbeReport) -> Vec<&str> {
    report.findings.iter().map(|f| f.code.as_str()).collect()
}

fn status(report: &ProbeReport, step: StepId) -> StepStatus {
    report.step(step).unwrap().status
}

#[tokio::test]
async fn every_scenario_gets_its_verdict() {
    let (_world, prober) = support::world().await;
    for scenario in scenarios::catalogue() {
        let report = support::probe(&prober, scenario.domain).await;
        assert_eq!(
            report.outcome, scenario.outcome,
            "{}: {}\n{:#?}",
            scenario.domain, scenario.description, report.steps
        );
        assert_eq!(
            report.endpoint.as_ref().map(|e| e.step),
            scenario.endpoint,
            "{}",
            scenario.domain
        );
    }
}

#[tokio::test]
async fn kept_reports_come_back_whole() {
    // The exporter keeps each domain's latest report deflated; its pages unpack it.
    let (_world, prober) = support::world().await;
    let mut yaml = String::from("domains:\n");
    for scenario in scenarios::catalogue() {
        yaml.push_str(&format!("  - domain: {}\n", scenario.domain));
    }
    let config = Config::parse(&yaml).unwrap();
    let kept_by = store::Store::default();
    for (scenario, domain) in scenarios::catalogue().iter().zip(&config.domains) {
        let mut report = support::probe(&prober, scenario.domain).await;
        report.findings = diagnose::explain(&report, &Expectations::default());
        let (memory, _) = diagnose::changes::advance(None, &report, report.started_at);
        let kept = kept_by.keep(
            domain,
            report.clone(),
            memory.clone(),
            Arc::from(Vec::new()),
        );
        assert_eq!(kept.report().unwrap(), report, "{}", scenario.domain);
        // The domain's state is kept packed; the pages' copy leaves it out.
        assert_eq!(kept.full_memory().unwrap(), memory, "{}", scenario.domain);
        assert_eq!(kept.memory.state, Default::default());
        assert_eq!(kept.memory.last_change_at, memory.last_change_at);
        let json = serde_json::to_string(&report).unwrap().len();
        assert!(
            kept.packed_len() < json / 2,
            "{}: {} bytes packed, {json} as JSON",
            scenario.domain,
            kept.packed_len()
        );
    }
}

#[tokio::test]
async fn the_same_request_to_the_same_host_is_shared_for_seconds() {
    // companyb and companyc both have an SRV record naming the Exchange host: the second probe
    // reuses what the first saw there (same host name, address, request), flagged as shared.
    let (_world, prober) = support::world().await;
    let first = support::probe(&prober, "companyb.example").await;
    let second = support::probe(&prober, "companyc.example").await;
    let srv_attempts = |report: &ProbeReport| -> Vec<bool> {
        report
            .step(StepId::SrvRecord)
            .unwrap()
            .hops
            .iter()
            .filter(|hop| hop.url.contains(EXCHANGE_HOST))
            .flat_map(|hop| hop.addresses.iter().map(|a| a.shared))
            .collect()
    };
    assert_eq!(srv_attempts(&first), [false]);
    assert_eq!(srv_attempts(&second), [true]);
    // Verdicts are what they are without sharing.
    assert_eq!(first.outcome, Outcome::CertificatePrompt);
    assert_eq!(second.outcome, Outcome::RedirectPrompt);
    assert_eq!(
        status(&second, StepId::SrvRecord),
        StepStatus::EndpointFound
    );
    // Steps that ask a domain's own host are never shared with another domain.
    for step in [StepId::RootDomain, StepId::AutodiscoverDomain] {
        let trace = second.step(step).unwrap();
        assert!(
            trace
                .hops
                .iter()
                .flat_map(|h| &h.addresses)
                .all(|a| !a.shared)
        );
    }
    // The trace says so.
    let text = autodiscover_exporter::render::trace::render(
        &second,
        autodiscover_exporter::render::trace::Colour::Off,
    );
    assert!(text.contains("(shared: observed seconds ago"), "{text}");
}

#[tokio::test]
async fn a_domains_own_hosts_are_observed_by_each_of_its_probes() {
    // companyb probed twice within seconds: its SRV target (a host of companya) is shared with
    // the second probe, its own names are handshaken with again.
    let (_world, prober) = support::world().await;
    let _first = support::probe(&prober, "companyb.example").await;
    let second = support::probe(&prober, "companyb.example").await;
    let shared = |step: StepId| -> Vec<(String, bool)> {
        second
            .step(step)
            .unwrap()
            .hops
            .iter()
            .flat_map(|hop| hop.addresses.iter().map(|a| (hop.url.clone(), a.shared)))
            .collect()
    };
    let root = shared(StepId::RootDomain);
    assert!(
        root.iter()
            .any(|(url, _)| url.contains("://companyb.example/")),
        "{root:?}"
    );
    assert!(root.iter().all(|(_, shared)| !shared), "{root:?}");
    let srv = shared(StepId::SrvRecord);
    assert!(
        srv.iter()
            .any(|(url, shared)| url.contains(EXCHANGE_HOST) && *shared),
        "{srv:?}"
    );
}

/// Two hosted domains whose SRV records name one host, which answers the POST with settings
/// naming the address asked for (so nothing of the answer may be shared).
async fn hosted_pair(
    behaviour: fn(String) -> autodiscover_exporter::lab::site::Behaviour,
) -> (
    autodiscover_exporter::lab::world::World,
    autodiscover_exporter::probe::Prober,
) {
    use autodiscover_exporter::lab::pki::Validity;
    use autodiscover_exporter::protocol::pox;
    let mut w = autodiscover_exporter::lab::world::WorldBuilder::new().unwrap();
    let identity = w
        .ca()
        .issue(&["mail.hoster.example"], Validity::ValidFor { days: 365 })
        .unwrap();
    let settings = pox::settings_document(
        "@ADDRESS@",
        "<Protocol><Type>EXCH</Type><Server>mail.hoster.example</Server></Protocol>",
    );
    w.https("203.0.113.70", identity, behaviour(settings));
    w.zone("hoster.example", "mail A 203.0.113.70");
    for domain in ["first.example", "second.example"] {
        w.zone(
            domain,
            "_autodiscover._tcp SRV 0 0 443 mail.hoster.example.",
        );
    }
    let world = w.start().await.unwrap();
    // Windows no slow test machine can overrun between two probes.
    let minutes = std::time::Duration::from_secs(600);
    let prober = world
        .prober()
        .unwrap()
        .with_kept_connections(minutes, minutes);
    (world, prober)
}

/// The hops of a report's SRV step to the hoster.
fn hoster_hops(
    report: &ProbeReport,
) -> impl Iterator<Item = &autodiscover_exporter::model::facts::Hop> {
    report
        .step(StepId::SrvRecord)
        .unwrap()
        .hops
        .iter()
        .filter(|hop| hop.url.contains("mail.hoster.example"))
}

/// The attempts of a report's SRV step at the hoster.
fn hoster_attempts(
    report: &ProbeReport,
) -> Vec<&autodiscover_exporter::model::facts::AddressAttempt> {
    hoster_hops(report).flat_map(|hop| &hop.addresses).collect()
}

#[tokio::test]
async fn the_next_domain_asks_the_same_host_over_the_connection_left_open() {
    use autodiscover_exporter::lab::site::Behaviour;
    let (_world, prober) = hosted_pair(|xml| Behaviour::Settings { xml }).await;
    let first_report = support::probe(&prober, "first.example").await;
    let second_report = support::probe(&prober, "second.example").await;
    let (first, second) = (
        hoster_attempts(&first_report)[0],
        hoster_attempts(&second_report)[0],
    );
    assert!(!first.connection_reused && !first.shared);
    assert!(second.connection_reused, "{second:?}");
    assert!(!second.shared);
    // The TLS facts are the handshake's that opened the connection; the answer is the domain's.
    assert_eq!(second.tls, first.tls);
    let answer = |attempt: &autodiscover_exporter::model::facts::AddressAttempt| {
        format!("{:?}", attempt.http.as_ref().unwrap().body)
    };
    assert!(answer(first).contains("someone@first.example"));
    assert!(
        answer(second).contains("someone@second.example"),
        "{}",
        answer(second)
    );
    assert_eq!(second.status, StepStatus::EndpointFound);
    let report = support::probe(&prober, "second.example").await;
    // The hoster's name was resolved for the first domain seconds ago: its lookup is shared.
    let hoster_lookup = |report: &ProbeReport| {
        hoster_hops(report)
            .find_map(|hop| hop.lookup.as_ref())
            .map(|lookup| (lookup.shared, lookup.addresses.clone()))
            .unwrap()
    };
    let (_, first_addresses) = hoster_lookup(&first_report);
    assert_eq!(hoster_lookup(&report), (true, first_addresses));
    let text = autodiscover_exporter::render::trace::render(
        &report,
        autodiscover_exporter::render::trace::Colour::Off,
    );
    assert!(text.contains("(connection kept open"), "{text}");
    assert!(text.contains("(shared: resolved seconds ago"), "{text}");
    // The domain's own names are never taken from another domain's lookups.
    for step in [StepId::RootDomain, StepId::AutodiscoverDomain] {
        let trace = report.step(step).unwrap();
        assert!(
            trace
                .hops
                .iter()
                .filter_map(|hop| hop.lookup.as_ref())
                .all(|lookup| !lookup.shared)
        );
    }
}

#[tokio::test]
async fn a_request_the_server_drops_on_a_kept_connection_goes_out_again_on_a_new_one() {
    use autodiscover_exporter::lab::site::Behaviour;
    let (_world, prober) = hosted_pair(|xml| Behaviour::SettingsOncePerConnection { xml }).await;
    let first = support::probe(&prober, "first.example").await;
    let second = support::probe(&prober, "second.example").await;
    assert_eq!(hoster_attempts(&first)[0].status, StepStatus::EndpointFound);
    let attempts = hoster_attempts(&second);
    assert_eq!(attempts.len(), 1);
    let attempt = attempts[0];
    assert!(!attempt.connection_reused, "{attempt:?}");
    assert_eq!(attempt.status, StepStatus::EndpointFound, "{attempt:?}");
    assert_eq!(first.outcome, second.outcome);
}

#[tokio::test]
async fn seed_situation_prompts_at_the_root_domain_and_finds_the_srv_endpoint() {
    let (_world, prober) = support::world().await;
    let report = support::probe(&prober, "companyb.example").await;
    assert_eq!(report.outcome, Outcome::CertificatePrompt);
    assert_eq!(report.certificate_prompts, vec![StepId::RootDomain]);
    assert_eq!(
        status(&report, StepId::RootDomain),
        StepStatus::CertNameMismatch
    );
    assert_eq!(
        status(&report, StepId::AutodiscoverDomain),
        StepStatus::DnsNoRecord
    );
    assert_eq!(
        status(&report, StepId::SrvRecord),
        StepStatus::EndpointFound
    );
    let endpoint = report.endpoint.as_ref().unwrap();
    assert_eq!(
        endpoint.url,
        format!("https://{EXCHANGE_HOST}/Autodiscover/Autodiscover.xml")
    );
    assert!(report.redirect_prompt);
    assert!(report.srv.present);
    assert_eq!(report.srv.records[0].target, EXCHANGE_HOST);
    let mismatch = report
        .findings
        .iter()
        .find(|f| f.code.as_str() == "certificate_name_mismatch")
        .unwrap();
    assert!(
        mismatch.message.contains("www.companyb.example"),
        "{}",
        mismatch.message
    );
    assert!(
        mismatch
            .hint
            .contains("Remove the A/AAAA record of companyb.example"),
        "{}",
        mismatch.hint
    );
    // the root domain's web server answered 404 behind the prompt: recorded, not an endpoint
    let root = report.step(StepId::RootDomain).unwrap();
    let attempt = &root.hops[0].addresses[0];
    assert_eq!(attempt.http.as_ref().unwrap().status, Some(404));
    let verdict = attempt.tls.as_ref().unwrap().verdict.as_ref().unwrap();
    assert!(!verdict.name_matches && verdict.trusted);
}

#[tokio::test]
async fn fixed_seed_and_healthy_host() {
    let (_world, prober) = support::world().await;
    let fixed = support::probe(&prober, "companyc.example").await;
    assert_eq!(fixed.outcome, Outcome::RedirectPrompt);
    assert!(fixed.certificate_prompts.is_empty());
    assert!(codes(&fixed).contains(&"redirect_prompt"));

    let healthy = support::probe(&prober, "companya.example").await;
    assert_eq!(healthy.outcome, Outcome::Ok);
    assert!(!healthy.redirect_prompt);
    // the bare domain's web site answers 404 with a valid certificate: Outlook moves on
    assert_eq!(status(&healthy, StepId::RootDomain), StepStatus::HttpStatus);
    // Exchange's fingerprint headers came with the 401: no GET was needed to read them
    let step = healthy.step(StepId::AutodiscoverDomain).unwrap();
    let attempt = &step.hops[0].addresses[0];
    assert!(attempt.http.as_ref().unwrap().looks_like_exchange());
    assert!(attempt.fingerprint.is_none());
    assert_eq!(
        attempt.http.as_ref().unwrap().auth_schemes(),
        vec!["Negotiate", "NTLM"]
    );
    // TLS 1.3 with the suite the probe offers first (its SHA-256 key schedule is the cheaper one)
    let tls = attempt.tls.as_ref().unwrap();
    assert_eq!(tls.version.as_deref(), Some("TLSv1_3"));
    assert_eq!(tls.cipher.as_deref(), Some("TLS13_AES_128_GCM_SHA256"));
    assert!(
        codes(&healthy).contains(&"certificate_internal_name"),
        "{:?}",
        codes(&healthy)
    );
}

#[tokio::test]
async fn certificate_failures_are_named() {
    let (_world, prober) = support::world().await;
    let expired = support::probe(&prober, "expired.example").await;
    assert_eq!(
        status(&expired, StepId::AutodiscoverDomain),
        StepStatus::CertExpired
    );
    assert!(codes(&expired).contains(&"certificate_expired"));
    assert!(codes(&expired).contains(&"exchange_behind_certificate_prompt"));

    let selfsigned = support::probe(&prober, "selfsigned.example").await;
    assert_eq!(
        status(&selfsigned, StepId::AutodiscoverDomain),
        StepStatus::CertUntrusted
    );

    let cname = support::probe(&prober, "cname.example").await;
    let step = cname.step(StepId::AutodiscoverDomain).unwrap();
    assert_eq!(step.status, StepStatus::CertNameMismatch);
    let lookup = step.hops[0].lookup.as_ref().unwrap();
    assert_eq!(lookup.cname_chain[0].target, "mail.hoster.example");
    let finding = cname
        .findings
        .iter()
        .find(|f| f.code.as_str() == "certificate_name_mismatch")
        .unwrap();
    assert!(
        finding.message.contains("CNAME to mail.hoster.example"),
        "{}",
        finding.message
    );

    let expiring = support::probe(&prober, "expiring.example").await;
    assert_eq!(expiring.outcome, Outcome::Ok);
    let leaf = expiring.step(StepId::AutodiscoverDomain).unwrap().hops[0].addresses[0]
        .tls
        .as_ref()
        .unwrap()
        .leaf()
        .unwrap()
        .clone();
    assert!(
        (8.0..=9.1).contains(&leaf.days_to_expiry),
        "{}",
        leaf.days_to_expiry
    );
    assert!(codes(&expiring).contains(&"certificate_expiring"));

    let wildcard = support::probe(&prober, "wildcard.example").await;
    assert_eq!(
        status(&wildcard, StepId::AutodiscoverDomain),
        StepStatus::EndpointFound
    );
}

#[tokio::test]
async fn redirects_loops_and_address_redirects() {
    let (_world, prober) = support::world().await;
    let redirect = support::probe(&prober, "redirect.example").await;
    assert_eq!(
        redirect.endpoint.as_ref().unwrap().step,
        StepId::HttpRedirect
    );
    assert!(redirect.redirects.iter().any(|r| matches!(
        r,
        RedirectHop::Url {
            step: StepId::HttpRedirect,
            ..
        }
    )));

    let insecure = support::probe(&prober, "insecure.example").await;
    assert_eq!(
        status(&insecure, StepId::HttpRedirect),
        StepStatus::RedirectInvalid
    );
    assert!(codes(&insecure).contains(&"redirect_refused"));

    let looping = support::probe(&prober, "loop.example").await;
    let step = looping.step(StepId::AutodiscoverDomain).unwrap();
    assert_eq!(step.status, StepStatus::RedirectInvalid);
    assert_eq!(step.hops.len(), 2, "{:#?}", step.hops);
    assert!(
        step.hops[1]
            .redirect_refused
            .as_ref()
            .unwrap()
            .to_string()
            .contains("loop")
    );

    let hybrid = support::probe(&prober, "hybrid.example").await;
    assert!(matches!(
        &hybrid.redirects[0],
        RedirectHop::Address { to, .. } if to == "someone@tenant.example"
    ));
    assert_eq!(hybrid.restarted.len(), 1);
    assert_eq!(
        hybrid.endpoint.as_ref().unwrap().url,
        "https://autodiscover.tenant.example/Autodiscover/Autodiscover.xml"
    );

    let redirect_url = support::probe(&prober, "redirecturl.example").await;
    let step = redirect_url.step(StepId::AutodiscoverDomain).unwrap();
    assert_eq!(step.hops.len(), 2);
    assert_eq!(step.status, StepStatus::EndpointFound);
}

#[tokio::test]
async fn srv_records_that_clients_ignore() {
    let (_world, prober) = support::world().await;
    let dot = support::probe(&prober, "srvdot.example").await;
    assert_eq!(status(&dot, StepId::SrvRecord), StepStatus::DnsNoRecord);
    assert!(!dot.srv.present);
    assert!(codes(&dot).contains(&"srv_no_service"));

    let port = support::probe(&prober, "srvport.example").await;
    assert!(!port.srv.present);
    assert_eq!(port.srv.records[0].port, 8443);
    assert!(codes(&port).contains(&"srv_port_ignored"));
}

#[tokio::test]
async fn hostile_and_odd_servers_are_bounded() {
    let (_world, prober) = support::world().await;
    let slow = support::probe(&prober, "slowtls.example").await;
    assert_eq!(status(&slow, StepId::RootDomain), StepStatus::Timeout);
    assert!(
        slow.step(StepId::RootDomain).unwrap().hops[0].addresses[0]
            .tls
            .as_ref()
            .unwrap()
            .handshake
            == autodiscover_exporter::model::facts::TlsHandshake::TimedOut
    );
    assert_eq!(slow.endpoint.as_ref().unwrap().step, StepId::SrvRecord);

    let blackhole = support::probe(&prober, "blackhole.example").await;
    assert_eq!(status(&blackhole, StepId::RootDomain), StepStatus::Timeout);
    assert!(codes(&blackhole).contains(&"step_timeout"));

    let huge = support::probe(&prober, "huge.example").await;
    let attempt = &huge.step(StepId::RootDomain).unwrap().hops[0].addresses[0];
    let http = attempt.http.as_ref().unwrap();
    assert_eq!(
        http.body_bytes,
        autodiscover_exporter::model::facts::BODY_CAP
    );
    assert_eq!(attempt.status, StepStatus::NotAutodiscover);
    assert!(codes(&huge).contains(&"response_too_large"));

    let drip = support::probe(&prober, "slowdrip.example").await;
    let attempt = &drip.step(StepId::RootDomain).unwrap().hops[0].addresses[0];
    assert_eq!(attempt.status, StepStatus::Timeout);
    let http = attempt.http.as_ref().unwrap();
    assert_eq!(http.status, Some(200));
    assert!(http.body_bytes < 16, "{} bytes", http.body_bytes);
    assert!(drip.duration_seconds < 6.0, "{}", drip.duration_seconds);

    let broken = support::probe(&prober, "brokenxml.example").await;
    let attempt = &broken.step(StepId::AutodiscoverDomain).unwrap().hops[0].addresses[0];
    assert_eq!(attempt.status, StepStatus::NotAutodiscover);
    assert!(matches!(
        attempt.http.as_ref().unwrap().body,
        autodiscover_exporter::model::facts::BodyKind::Other { .. }
    ));

    let parking = support::probe(&prober, "parking.example").await;
    assert_eq!(
        status(&parking, StepId::RootDomain),
        StepStatus::NotAutodiscover
    );
    assert_eq!(
        status(&parking, StepId::AutodiscoverDomain),
        StepStatus::NotAutodiscover
    );

    let split = support::probe(&prober, "split.example").await;
    let hop = &split.step(StepId::AutodiscoverDomain).unwrap().hops[0];
    assert_eq!(hop.addresses.len(), 2);
    assert_ne!(hop.addresses[0].status, hop.addresses[1].status);
    assert_eq!(hop.status, StepStatus::CertNameMismatch);
    assert!(codes(&split).contains(&"addresses_disagree"));

    let basic = support::probe(&prober, "basic.example").await;
    assert!(
        codes(&basic).contains(&"password_prompt_unknown_server"),
        "{:?}",
        codes(&basic)
    );
}

#[tokio::test]
async fn excluded_steps_and_nothing_at_all() {
    let (_world, prober) = support::world().await;
    let mut options = support::fast_options();
    options.steps = vec![
        StepId::AutodiscoverDomain,
        StepId::HttpRedirect,
        StepId::SrvRecord,
    ];
    // ExcludeHttpsRootDomain removes the seed's prompt
    let address = MailAddress::parse("someone@companyb.example").unwrap();
    let report = prober.probe(&address, &options).await;
    assert_eq!(status(&report, StepId::RootDomain), StepStatus::Excluded);
    assert_eq!(report.outcome, Outcome::RedirectPrompt);

    let nothing = support::probe(&prober, "nothing.example").await;
    for step in &StepId::ALL[1..] {
        assert_eq!(status(&nothing, *step), StepStatus::DnsNoRecord, "{step}");
    }
    assert_eq!(
        status(&nothing, StepId::Microsoft365),
        StepStatus::HttpStatus,
        "Microsoft 365 answers 302 for addresses it does not know"
    );
    assert!(codes(&nothing).contains(&"no_autodiscover"));
}

#[tokio::test]
async fn a_service_whose_certificate_lacks_its_name_is_a_certificate_prompt() {
    use autodiscover_exporter::model::settings::{ServiceKind, ServicePrompt, ServiceStatus};
    let (_world, prober) = support::world().await;
    let report = support::probe(&prober, "ewscert.example").await;
    assert_eq!(report.outcome, Outcome::CertificatePrompt);
    assert!(report.certificate_prompts.is_empty());
    assert_eq!(
        report.endpoint.as_ref().unwrap().step,
        StepId::AutodiscoverDomain
    );
    assert_eq!(
        report.service_certificate_prompts,
        vec![ServicePrompt {
            service: ServiceKind::Ews,
            host: "mail.ewscert.example".into()
        }]
    );
    let source = report.settings_source.as_ref().unwrap();
    assert!(!source.authenticated);
    let ews = report
        .services
        .iter()
        .find(|s| s.target.service == ServiceKind::Ews)
        .unwrap();
    assert_eq!(ews.status, ServiceStatus::CertNameMismatch);
    assert_eq!(
        ews.target.url.as_deref(),
        Some("https://mail.ewscert.example/EWS/Exchange.asmx")
    );
    // behind the prompt the EWS answered 401 (recorded), the OAB and RPC hosts are fine
    assert_eq!(ews.addresses[0].http.as_ref().unwrap().status, Some(401));
    for service in [ServiceKind::Oab, ServiceKind::Rpc] {
        let check = report
            .services
            .iter()
            .find(|s| s.target.service == service)
            .unwrap();
        assert_eq!(check.status, ServiceStatus::Ok, "{service}");
    }
    let finding = report
        .findings
        .iter()
        .find(|f| f.code.as_str() == "service_certificate_prompt")
        .unwrap();
    assert!(
        finding
            .message
            .contains("https://mail.ewscert.example/EWS/Exchange.asmx")
            && finding.message.contains("not mail.ewscert.example"),
        "{}",
        finding.message
    );
    assert!(
        finding.hint.contains("Set-WebServicesVirtualDirectory"),
        "{}",
        finding.hint
    );
    assert!(!report.success());
}

#[tokio::test]
async fn credentials_unlock_the_settings_and_never_show() {
    use autodiscover_exporter::model::settings::{CredentialsResult, ServiceKind};
    use autodiscover_exporter::probe::credentials::CredentialsPolicy;
    use autodiscover_exporter::render::trace::{self, Colour};
    let (_world, prober) = support::world().await;
    let account = scenarios::EWSAUTH_ACCOUNT;

    // without credentials: the 401 is the endpoint, nothing after it is known
    let anonymous =
        support::probe_with(&prober, "someone@ewsauth.example", &support::fast_options()).await;
    assert_eq!(anonymous.outcome, Outcome::Ok);
    assert!(anonymous.settings.is_none() && anonymous.services.is_empty());
    assert!(anonymous.credentials.is_none());

    // with them: settings, the EWS host's certificate, a service prompt
    let report = support::probe(&prober, "ewsauth.example").await;
    assert_eq!(report.outcome, Outcome::CertificatePrompt);
    assert!(report.settings_source.as_ref().unwrap().authenticated);
    assert_eq!(
        report.service_certificate_prompts[0].service,
        ServiceKind::Ews
    );
    assert_eq!(
        report.service_certificate_prompts[0].host,
        "mail.ewsauth.example"
    );
    let settings = report.settings.as_ref().unwrap();
    assert_eq!(
        settings.autodiscover_smtp_address.as_deref(),
        Some("someone@ewsauth.example")
    );
    let json = serde_json::to_string(&report).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["credentials"]["result"], "sent",
        "{}",
        value["credentials"]
    );
    let back: ProbeReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.credentials, report.credentials);
    let text = trace::render(&report, Colour::Off);
    for output in [&json, &text, &format!("{report:?}")] {
        assert!(!output.contains(account.password), "password leaked");
        assert!(!output.contains("cHJvYmVA"), "Authorization header leaked");
    }
    assert!(
        text.contains("with Basic authentication (credentials not shown)"),
        "{text}"
    );

    // a wrong password: a finding, not a probe error
    scenarios::LabAccount {
        username: account.username,
        password: "not-the-password",
    }
    .write_file(&support::credentials_dir(), "wrong")
    .unwrap();
    let mut options = support::fast_options();
    options.credentials = Some(CredentialsPolicy {
        file: support::credentials_dir().join("wrong.credentials.yml"),
        hosts: vec![],
    });
    let rejected = support::probe_with(&prober, "someone@ewsauth.example", &options).await;
    assert_eq!(rejected.outcome, Outcome::Ok);
    assert!(matches!(
        rejected.credentials.as_ref().unwrap().result,
        CredentialsResult::Sent { .. }
    ));
    assert!(
        codes(&rejected).contains(&"credentials_rejected"),
        "{:?}",
        codes(&rejected)
    );

    // the endpoint found through SRV is behind a redirect: not in credentials_hosts, not sent
    let mut options = support::fast_options();
    options.credentials = Some(CredentialsPolicy {
        file: account
            .write_file(&support::credentials_dir(), "companyc.example")
            .unwrap(),
        hosts: vec![],
    });
    let srv = support::probe_with(&prober, "someone@companyc.example", &options).await;
    match &srv.credentials.as_ref().unwrap().result {
        CredentialsResult::NotSent { reason } => {
            assert!(reason.contains("credentials_hosts"), "{reason}")
        }
        other => panic!("credentials sent through a redirect: {other:?}"),
    }
    assert!(codes(&srv).contains(&"credentials_not_sent"));
    assert_eq!(srv.outcome, Outcome::RedirectPrompt);
}

#[tokio::test]
async fn mail_services_speak_starttls_and_their_certificates_count() {
    use autodiscover_exporter::model::settings::{ServiceKind, ServiceStatus, TlsMode};
    let (_world, prober) = support::world().await;
    let report = support::probe(&prober, "mailhoster.example").await;
    assert_eq!(report.outcome, Outcome::CertificatePrompt);
    let summary: Vec<(ServiceKind, u16, TlsMode, ServiceStatus)> = report
        .services
        .iter()
        .map(|s| (s.target.service, s.target.port, s.target.tls, s.status))
        .collect();
    assert_eq!(
        summary,
        [
            (ServiceKind::Imap, 143, TlsMode::Starttls, ServiceStatus::Ok),
            (ServiceKind::Pop3, 995, TlsMode::Implicit, ServiceStatus::Ok),
            (
                ServiceKind::Smtp,
                587,
                TlsMode::Starttls,
                ServiceStatus::CertNameMismatch
            ),
        ]
    );
    let imap = &report.services[0].addresses[0];
    assert_eq!(imap.starttls_offered, Some(true));
    assert!(
        imap.dialogue.iter().any(|l| l.text == "a2 STARTTLS"),
        "{:?}",
        imap.dialogue
    );
    assert!(
        imap.tls
            .as_ref()
            .unwrap()
            .verdict
            .as_ref()
            .unwrap()
            .is_valid()
    );
    let smtp = &report.services[2].addresses[0];
    assert!(smtp.dialogue.iter().any(|l| l.text.starts_with("EHLO ")));
    assert_eq!(
        smtp.tls.as_ref().unwrap().leaf().unwrap().dns_names,
        ["mx.otherhoster.example"]
    );
    assert_eq!(report.service_certificate_prompts.len(), 1);
    let finding = report
        .findings
        .iter()
        .find(|f| f.code.as_str() == "service_certificate_prompt")
        .unwrap();
    assert!(
        finding.message.contains("smtp.mailhoster.example:587"),
        "{}",
        finding.message
    );
    assert!(
        finding.hint.contains("hosting provider"),
        "{}",
        finding.hint
    );
}

#[tokio::test]
async fn settings_with_internal_names_are_findings_not_prompts() {
    use autodiscover_exporter::model::settings::ServiceKind;
    let (_world, prober) = support::world().await;
    let report = support::probe(&prober, "internalname.example").await;
    assert_eq!(report.outcome, Outcome::Ok);
    let ews = report
        .services
        .iter()
        .find(|s| s.target.service == ServiceKind::Ews)
        .unwrap();
    assert_eq!(ews.target.host, "exch01.corp.local");
    assert!(!ews.status.is_certificate_prompt());
    let finding = report
        .findings
        .iter()
        .find(|f| f.code.as_str() == "settings_internal_name")
        .unwrap();
    assert!(
        finding.message.contains("exch01.corp.local"),
        "{}",
        finding.message
    );
}

#[tokio::test]
async fn broken_mail_servers_are_named_and_bounded() {
    use autodiscover_exporter::lab::mail::{MailBehaviour, MailFault};
    use autodiscover_exporter::lab::pki::Validity;
    use autodiscover_exporter::lab::site::Behaviour;
    use autodiscover_exporter::lab::world::WorldBuilder;
    use autodiscover_exporter::model::settings::{ServiceKind, ServiceStatus};
    use autodiscover_exporter::net::mail::MailProtocol;
    use autodiscover_exporter::protocol::pox;

    let mut w = WorldBuilder::new().unwrap();
    let year = Validity::ValidFor { days: 365 };
    let autodiscover = w
        .ca()
        .issue(&["autodiscover.hostile.example"], year.clone())
        .unwrap();
    let mail = w.ca().issue(&["mail.hostile.example"], year).unwrap();
    w.https(
        "203.0.113.80",
        autodiscover,
        Behaviour::Settings {
            xml: pox::settings_document(
                "x",
                "<Protocol><Type>IMAP</Type><Server>mail.hostile.example</Server><Port>143</Port><Encryption>TLS</Encryption></Protocol>\
                 <Protocol><Type>POP3</Type><Server>mail.hostile.example</Server><Port>995</Port><SSL>on</SSL></Protocol>\
                 <Protocol><Type>SMTP</Type><Server>mail.hostile.example</Server><Port>587</Port><Encryption>TLS</Encryption></Protocol>\
                 <Protocol><Type>SMTP</Type><Server>mail.hostile.example</Server><Port>25</Port><Encryption>TLS</Encryption></Protocol>",
            ),
        },
    );
    let behaviour = |protocol, implicit_tls, starttls, fault| MailBehaviour {
        protocol,
        implicit_tls,
        starttls,
        fault,
    };
    // IMAP without STARTTLS, POP3 that never speaks, SMTP refusing at the greeting; port 25 closed
    w.mail(
        "203.0.113.81",
        143,
        mail.clone(),
        behaviour(MailProtocol::Imap, false, false, None),
    );
    w.mail(
        "203.0.113.81",
        995,
        mail.clone(),
        behaviour(MailProtocol::Pop3, true, false, Some(MailFault::Silent)),
    );
    w.mail(
        "203.0.113.81",
        587,
        mail,
        behaviour(
            MailProtocol::Smtp,
            false,
            true,
            Some(MailFault::RejectGreeting),
        ),
    );
    w.zone(
        "hostile.example",
        "autodiscover A 203.0.113.80\nmail A 203.0.113.81",
    );
    let world = w.start().await.unwrap();
    let prober = world.prober().unwrap();
    let report =
        support::probe_with(&prober, "someone@hostile.example", &support::fast_options()).await;
    assert_eq!(report.outcome, Outcome::Ok, "no certificate alert anywhere");
    let statuses: Vec<(ServiceKind, u16, ServiceStatus)> = report
        .services
        .iter()
        .map(|s| (s.target.service, s.target.port, s.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (ServiceKind::Imap, 143, ServiceStatus::StarttlsFailed),
            (ServiceKind::Pop3, 995, ServiceStatus::Timeout),
            (ServiceKind::Smtp, 587, ServiceStatus::UnexpectedGreeting),
            (ServiceKind::Smtp, 25, ServiceStatus::ConnectRefused),
        ]
    );
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.code.as_str() == "service_unavailable")
            .count(),
        4,
        "{:#?}",
        report.findings
    );
    assert!(report.duration_seconds < 6.0, "{}", report.duration_seconds);
    world.stop().await;
}
