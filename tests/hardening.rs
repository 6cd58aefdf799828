#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

//! Hostile DNS, hostile servers and hostile clients: every input from outside is bounded, and
//! a local failure is never blamed on a customer's domain.

mod support;

use support::{RunningExporter, config_yaml, fixed, request};

const SEED: &[(&str, &str)] = &[
    ("companyb.example", "CompanyB"),
    ("nothing.example", "Nothing"),
];

#[tokio::test]
async fn hostile_scrape_timeouts_do_not_panic() {
    let running = RunningExporter::start(fixed(&config_yaml(SEED)), None).await;
    for value in [
        "1e20",
        "1e308",
        "18446744073709551616",
        "NaN",
        "-1",
        "inf",
        "0",
        "3",
    ] {
        let answer = request(
            running.address,
            "GET",
            "/probe?target=nothing.example",
            &[("X-Prometheus-Scrape-Timeout-Seconds", value)],
        )
        .await;
        assert_eq!(answer.status, 200, "{value}: {}", answer.body);
        assert!(
            answer.body.contains("autodiscover_outcome{"),
            "{value}: {}",
            answer.body
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn probe_targets_with_hostile_local_parts_are_refused() {
    let running = RunningExporter::start(fixed(&config_yaml(SEED)), None).await;
    let long = format!("/probe?target={}%40companyb.example", "a".repeat(9_990));
    let answer = request(running.address, "GET", &long, &[]).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body.len() < 1024,
        "the refusal echoes the whole target: {} bytes",
        answer.body.len()
    );
    for target in [
        "a%0D%0Ab%40companyb.example",
        "a%0Ab%40companyb.example",
        "someone%40companyb.example%0D%0AX-Injected:%201",
        "%1B%5B31mred%40companyb.example",
    ] {
        let answer = request(
            running.address,
            "GET",
            &format!("/probe?target={target}"),
            &[],
        )
        .await;
        assert_eq!(answer.status, 400, "{target}: {}", answer.body);
        assert!(
            !answer.body.contains('\r') && !answer.body.contains('\u{1b}'),
            "{target}: control characters echoed: {:?}",
            answer.body
        );
    }
    running.stop().await;
}

/// A world of hostile servers: control characters and bidi overrides in a certificate subject,
/// in an Autodiscover error message and in response headers; a header cut inside a character.
fn hostile_world() -> autodiscover_exporter::lab::world::WorldBuilder {
    use autodiscover_exporter::lab::pki::Validity;
    use autodiscover_exporter::lab::site::Behaviour;
    use autodiscover_exporter::lab::world::WorldBuilder;
    use autodiscover_exporter::protocol::pox;
    let mut w = WorldBuilder::new().unwrap();
    let evil = w
        .ca()
        .issue_with_subject(
            "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}moc.live",
            &["autodiscover.evil.example"],
            Validity::ValidFor { days: 365 },
        )
        .unwrap();
    let xml = pox::error_response(
        "500\u{1b}[5m",
        "Invalid\u{1b}[1A\u{1b}[2K\r user\u{7}\u{202e}\u{9b}2J",
    );
    w.https(
        "203.0.113.70",
        evil,
        Behaviour::Raw {
            status: 200,
            headers: vec![
                ("Content-Type".into(), b"text/xml; charset=utf-8".to_vec()),
                (
                    "X-Evil-Enabled".into(),
                    "\u{9b}31m\u{202e}true\u{2066}".as_bytes().to_vec(),
                ),
            ],
            body: xml.into_bytes(),
        },
    );
    w.zone("evil.example", "autodiscover A 203.0.113.70");
    // 511 bytes, then a byte that is not UTF-8: its replacement character straddles byte 512.
    let mut server = vec![b'a'; 511];
    server.push(0xff);
    let cut = w
        .ca()
        .issue(
            &["autodiscover.cut.example"],
            Validity::ValidFor { days: 365 },
        )
        .unwrap();
    w.https(
        "203.0.113.71",
        cut,
        Behaviour::Raw {
            status: 404,
            headers: vec![("Server".into(), server)],
            body: Vec::new(),
        },
    );
    w.zone("cut.example", "autodiscover A 203.0.113.71");
    w
}

/// Characters that make a terminal (or a bidi-aware viewer) do something, other than newlines.
fn unsafe_chars(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| *c != '\n')
        .filter(|c| autodiscover_exporter::model::text::is_unsafe(*c))
        .collect()
}

#[tokio::test]
async fn hostile_text_reaches_no_terminal_unescaped() {
    use autodiscover_exporter::render::trace::{self, Colour};
    let world = hostile_world().start().await.unwrap();
    let prober = world.prober().unwrap();
    let report = support::probe(&prober, "evil.example").await;
    let leaf = report
        .steps
        .iter()
        .flat_map(|s| s.addresses())
        .find_map(|(_, a)| a.tls.as_ref().and_then(|t| t.leaf()).cloned())
        .expect("the hostile server presented a certificate");
    assert!(
        leaf.subject.contains('\u{1b}') || leaf.subject.contains("\\x1b"),
        "the lab certificate does not carry the escape: {:?}",
        leaf.subject
    );
    let text = trace::render(&report, Colour::Off);
    assert_eq!(unsafe_chars(&text), Vec::<char>::new(), "{text}");
    assert!(text.contains("\\u{202e}"), "{text}");
    let coloured = trace::render(&report, Colour::On);
    for (index, _) in coloured.match_indices('\u{1b}') {
        let rest = &coloured[index + 1..];
        let sgr = rest.strip_prefix('[').is_some_and(|r| {
            let end = r.find('m').unwrap_or(r.len());
            end > 0 && r[..end].chars().all(|c| c.is_ascii_digit() || c == ';')
        });
        assert!(
            sgr,
            "an escape that is not our colour: {:?}",
            &rest[..rest.len().min(20)]
        );
    }
    // A timeline entry carries text from outside too (host names, record values).
    let timeline = [autodiscover_exporter::model::history::Change {
        at: 0,
        kind: autodiscover_exporter::model::history::ChangeKind::Nameservers,
        subject: "ns\u{202e}1.example".into(),
        before: "a\u{1b}[31m".into(),
        after: "b\r\nc".into(),
    }];
    let summary = autodiscover_exporter::render::html::ReportSummary::of(&report);
    let page = autodiscover_exporter::render::html::domain_page(
        &autodiscover_exporter::render::html::DomainView {
            domain: &report.domain,
            labels: &Default::default(),
            summary: Some(&summary),
            memory: None,
            timeline: &timeline,
        },
        Some(&report),
        &autodiscover_exporter::render::html::PageContext {
            now: 0,
            base: "",
            reload_failure: None,
        },
    );
    assert_eq!(unsafe_chars(&page), Vec::<char>::new());
}

#[tokio::test]
async fn a_header_cut_inside_a_character_is_no_panic() {
    let world = hostile_world().start().await.unwrap();
    let prober = world.prober().unwrap();
    let report = support::probe(&prober, "cut.example").await;
    let server = report
        .steps
        .iter()
        .flat_map(|s| s.addresses())
        .find_map(|(_, a)| a.http.as_ref().and_then(|h| h.server.clone()))
        .expect("the Server header was recorded");
    assert_eq!(server, "a".repeat(511));
}

#[tokio::test]
async fn probe_debug_output_is_escaped() {
    let yaml = "defaults:\n  phase_timeout: 1500ms\n  timeout: 8s\n  step_timeout: 5s\ndomains:\n  - domain: evil.example\n";
    let running = RunningExporter::start_in(hostile_world(), fixed(yaml), None).await;
    let answer = request(
        running.address,
        "GET",
        "/probe?target=evil.example&debug=true",
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("Autodiscover for"), "{}", answer.body);
    assert_eq!(
        unsafe_chars(&answer.body),
        Vec::<char>::new(),
        "{}",
        answer.body
    );
    let metrics = request(running.address, "GET", "/metrics", &[]).await.body;
    assert!(
        metrics.contains("autodiscover_certificate_info{"),
        "{metrics}"
    );
    assert_eq!(unsafe_chars(&metrics), Vec::<char>::new());
    running.stop().await;
}

mod sockets {
    //! A connector that counts connection attempts and how many are open at once, hangs on the
    //! addresses of 198.18.0.0/15 (like a firewall dropping packets) and fails with EMFILE on
    //! 192.0.2.66; everything else goes to the lab world.

    use autodiscover_exporter::net::connect::Connector;
    use std::future::Future;
    use std::io;
    use std::net::{IpAddr, SocketAddr};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpStream;

    #[derive(Default)]
    pub struct Counts {
        pub attempts: AtomicUsize,
        pub open: AtomicUsize,
        pub most_open: AtomicUsize,
        pub last_attempt: std::sync::Mutex<Option<tokio::time::Instant>>,
    }

    pub struct Counting {
        pub inner: Arc<dyn Connector>,
        pub counts: Arc<Counts>,
    }

    struct Open(Arc<Counts>);

    impl Drop for Open {
        fn drop(&mut self) {
            self.0.open.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Connector for Counting {
        fn connect(
            &self,
            address: SocketAddr,
        ) -> Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send + '_>> {
            let counts = self.counts.clone();
            counts.attempts.fetch_add(1, Ordering::SeqCst);
            *counts.last_attempt.lock().unwrap() = Some(tokio::time::Instant::now());
            let now = counts.open.fetch_add(1, Ordering::SeqCst) + 1;
            counts.most_open.fetch_max(now, Ordering::SeqCst);
            let open = Open(counts);
            Box::pin(async move {
                let _open = open;
                match address.ip() {
                    IpAddr::V4(v4) if v4.octets()[..2] == [198, 18] => std::future::pending().await,
                    IpAddr::V4(v4) if v4.octets() == [192, 0, 2, 66] => {
                        Err(io::Error::from_raw_os_error(libc::EMFILE))
                    }
                    _ => self.inner.connect(address).await,
                }
            })
        }
    }
}

/// `count` A records in 198.18.0.0/15 (which the counting connector blackholes).
fn many_a_records(name: &str, count: usize) -> String {
    (0..count)
        .map(|i| format!("{name} A 198.18.{}.{}\n", i / 250, i % 250 + 1))
        .collect()
}

async fn counting_prober(
    world: &autodiscover_exporter::lab::world::World,
) -> (
    autodiscover_exporter::probe::Prober,
    std::sync::Arc<sockets::Counts>,
) {
    use autodiscover_exporter::net::dns::{Dns, DnsProtocol};
    let counts = std::sync::Arc::new(sockets::Counts::default());
    let dns = Dns::new(
        &[world.nameserver()],
        DnsProtocol::Udp,
        std::time::Duration::from_secs(2),
    )
    .unwrap();
    let connector = sockets::Counting {
        inner: world.connector(),
        counts: counts.clone(),
    };
    let prober = autodiscover_exporter::probe::Prober::new(
        dns,
        world.trust(),
        std::sync::Arc::new(connector),
    );
    (prober, counts)
}

#[tokio::test]
async fn thousands_of_addresses_cost_sixteen_connections() {
    use autodiscover_exporter::model::step::{Outcome, StepId, StepStatus};
    use std::sync::atomic::Ordering;
    let (prober, counts, _log, _world, _dns) = hostile_dns_prober().await;
    let report = support::probe(&prober, "many.example").await;
    let step = report.step(StepId::AutodiscoverDomain).unwrap();
    let lookup = step.hops[0].lookup.as_ref().unwrap();
    assert_eq!(
        lookup.addresses_published,
        1500,
        "{lookup:?} {:?}",
        _log.lock().unwrap()
    );
    assert_eq!(lookup.addresses.len(), 16);
    assert_eq!(step.status, StepStatus::Timeout);
    assert_eq!(report.outcome, Outcome::NotFound);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code.as_str() == "too_many_addresses" && f.message.contains("1500")),
        "{:?}",
        report.findings
    );
    // autodiscover_domain (443) and http_redirect (80) each try 16 addresses.
    let attempts = counts.attempts.load(Ordering::SeqCst);
    let most_open = counts.most_open.load(Ordering::SeqCst);
    eprintln!("1500 A records: {attempts} connection attempts, at most {most_open} at once");
    assert!(attempts <= 32, "{attempts} connection attempts");
    assert!(most_open <= 32, "{most_open} connections at once");
}

#[tokio::test]
async fn a_thousand_srv_records_are_capped_and_the_step_stops_at_its_deadline() {
    use autodiscover_exporter::model::step::{StepId, StepStatus};
    use std::sync::atomic::Ordering;
    let (prober, counts, log, _world, _dns) = hostile_dns_prober().await;
    let started = tokio::time::Instant::now();
    let report = support::probe(&prober, "s1k.example").await;
    let step_deadline = started + support::fast_options().step_timeout;
    let step = report.step(StepId::SrvRecord).unwrap();
    let srv = step.srv.as_ref().unwrap();
    assert_eq!(srv.records_published, 1000);
    assert_eq!(srv.records.len(), 16);
    assert_eq!(report.srv.records.len(), 16);
    assert_eq!(srv.records[0].target, "t0.s1k.example");
    assert_eq!(step.status, StepStatus::Timeout);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code.as_str() == "srv_records_capped" && f.message.contains("1000")),
        "{:?}",
        report.findings
    );
    // Each target hangs for a phase (1.5 s) within the step's 6 s: a few are tried, in order.
    let tried = step.hops.len();
    assert!((2..=5).contains(&tried), "{tried} SRV targets tried");
    let late: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| *at > step_deadline + std::time::Duration::from_millis(50))
        .map(|(_, q)| q.clone())
        .collect();
    assert!(
        late.is_empty(),
        "DNS queries after the step's deadline: {late:?}"
    );
    eprintln!(
        "1000 SRV records: {tried} targets tried, {} connection attempts",
        counts.attempts.load(Ordering::SeqCst)
    );
    assert!(counts.attempts.load(Ordering::SeqCst) <= tried);
    let last = counts.last_attempt.lock().unwrap().unwrap();
    assert!(
        last <= step_deadline,
        "a connection was opened after the step's deadline"
    );
}

#[tokio::test]
async fn one_probe_holds_at_most_its_share_of_connections() {
    use autodiscover_exporter::model::step::Outcome;
    use std::sync::atomic::Ordering;
    let mut w = autodiscover_exporter::lab::world::WorldBuilder::new().unwrap();
    let mut zone = many_a_records("@", 100);
    zone.push_str(&many_a_records("autodiscover", 100));
    zone.push_str(&many_a_records("srv", 100));
    zone.push_str("_autodiscover._tcp SRV 0 0 443 srv.wide.example.\n");
    w.zone("wide.example", &zone);
    let world = w.start().await.unwrap();
    let (prober, counts) = counting_prober(&world).await;
    let report = support::probe(&prober, "wide.example").await;
    let most_open = counts.most_open.load(Ordering::SeqCst);
    eprintln!(
        "4 hosts x 100 addresses: {} attempts, at most {most_open} at once",
        counts.attempts.load(Ordering::SeqCst)
    );
    assert!(most_open <= 32, "{most_open} connections at once");
    // Waiting for the probe's own slots is the domain's slowness, not a local failure.
    assert_eq!(report.outcome, Outcome::NotFound, "{:?}", report.findings);
}

#[tokio::test]
async fn a_full_process_budget_is_a_probe_error_not_the_domains_fault() {
    use autodiscover_exporter::model::step::Outcome;
    use std::sync::atomic::Ordering;
    let mut w = autodiscover_exporter::lab::world::WorldBuilder::new().unwrap();
    let mut zone = many_a_records("@", 16);
    zone.push_str(&many_a_records("autodiscover", 16));
    w.zone("slow.example", &zone);
    let world = w.start().await.unwrap();
    let (prober, counts) = counting_prober(&world).await;
    let prober = prober.with_connection_limit(4);
    let report = support::probe(&prober, "slow.example").await;
    assert!(counts.most_open.load(Ordering::SeqCst) <= 4);
    assert_eq!(report.outcome, Outcome::ProbeError);
    let codes: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        vec!["local_resource_exhausted"],
        "{:?}",
        report.findings
    );
}

#[tokio::test]
async fn too_many_open_files_is_a_probe_error() {
    use autodiscover_exporter::model::facts::ConnectResult;
    use autodiscover_exporter::model::step::{Outcome, StepId, StepStatus};
    let mut w = autodiscover_exporter::lab::world::WorldBuilder::new().unwrap();
    w.zone("fds.example", "autodiscover A 192.0.2.66");
    let world = w.start().await.unwrap();
    let (prober, _) = counting_prober(&world).await;
    let report = support::probe(&prober, "fds.example").await;
    let step = report.step(StepId::AutodiscoverDomain).unwrap();
    let attempt = &step.hops[0].addresses[0];
    assert!(
        matches!(attempt.connect, ConnectResult::LocalError { .. }),
        "{:?}",
        attempt.connect
    );
    assert_ne!(step.status, StepStatus::ConnectRefused);
    assert_eq!(report.outcome, Outcome::ProbeError);
    let finding = report
        .findings
        .iter()
        .find(|f| f.code.as_str() == "local_resource_exhausted")
        .unwrap_or_else(|| panic!("{:?}", report.findings));
    assert!(
        finding.message.contains("192.0.2.66"),
        "{}",
        finding.message
    );
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.code.as_str() == "no_autodiscover"),
        "the domain is blamed: {:?}",
        report.findings
    );
}

/// A service endpoint named by the settings that this machine cannot connect to (EMFILE) is
/// the exporter's failure, as for the steps: `probe_error` with `local_resource_exhausted`,
/// never a timeout or an unavailable service of the domain.
#[tokio::test]
async fn a_service_endpoint_skipped_for_a_local_reason_is_a_probe_error() {
    use autodiscover_exporter::lab::pki::Validity;
    use autodiscover_exporter::lab::site::Behaviour;
    use autodiscover_exporter::model::facts::ConnectResult;
    use autodiscover_exporter::model::settings::ServiceKind;
    use autodiscover_exporter::model::step::{Outcome, StepId, StepStatus};
    use autodiscover_exporter::protocol::pox;
    let mut w = autodiscover_exporter::lab::world::WorldBuilder::new().unwrap();
    let identity = w
        .ca()
        .issue(
            &["autodiscover.svcfds.example"],
            Validity::ValidFor { days: 365 },
        )
        .unwrap();
    w.https(
        "203.0.113.90",
        identity,
        Behaviour::Settings {
            xml: pox::settings_document(
                "x",
                "<Protocol><Type>EXCH</Type>\
                 <EwsUrl>https://mail.svcfds.example/EWS/Exchange.asmx</EwsUrl></Protocol>",
            ),
        },
    );
    w.zone(
        "svcfds.example",
        "autodiscover A 203.0.113.90\nmail A 192.0.2.66",
    );
    let world = w.start().await.unwrap();
    let (prober, _) = counting_prober(&world).await;
    let report = support::probe(&prober, "svcfds.example").await;
    assert_eq!(
        report.step(StepId::AutodiscoverDomain).unwrap().status,
        StepStatus::EndpointFound
    );
    let ews = report
        .services
        .iter()
        .find(|s| s.target.service == ServiceKind::Ews)
        .unwrap_or_else(|| panic!("{:?}", report.services));
    assert!(
        matches!(ews.addresses[0].connect, ConnectResult::LocalError { .. }),
        "{:?}",
        ews.addresses[0].connect
    );
    assert_eq!(report.outcome, Outcome::ProbeError, "{:?}", report.findings);
    let codes: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        vec!["local_resource_exhausted"],
        "{:?}",
        report.findings
    );
    assert!(
        report.findings[0].message.contains("192.0.2.66"),
        "{}",
        report.findings[0].message
    );
}

mod hostile_dns {
    //! A name server that publishes what no sane zone does: 1,500 A records for
    //! `autodiscover.many.example`, 1,000 SRV records for `_autodiscover._tcp.s1k.example`
    //! (targets `tN.s1k.example`, one blackholed address each). NXDOMAIN for the rest. Every
    //! query is logged with its time.

    use hickory_server::proto::op::{Message, ResponseCode};
    use hickory_server::proto::rr::rdata::{A, SRV};
    use hickory_server::proto::rr::{Name, RData, Record, RecordType};
    use std::net::{Ipv4Addr, SocketAddr};
    use std::str::FromStr;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    pub type Log = Arc<Mutex<Vec<(Instant, String)>>>;

    pub fn blackholed(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8)
    }

    /// N of `tN.s1k.example.`.
    fn target_index(name: &str) -> Option<usize> {
        name.strip_suffix(".s1k.example.")?
            .strip_prefix('t')?
            .parse()
            .ok()
    }

    fn answer(request: &Message) -> Message {
        let Some(query) = request.queries.first() else {
            return Message::error_msg(
                request.metadata.id,
                request.metadata.op_code,
                ResponseCode::FormErr,
            );
        };
        let name = query.name().to_ascii().to_ascii_lowercase();
        let records: Option<Vec<Record>> = match (name.as_str(), query.query_type()) {
            ("autodiscover.many.example.", RecordType::A) => Some(
                (0..1500)
                    .map(|i| {
                        Record::from_rdata(query.name().clone(), 60, RData::A(A(blackholed(i))))
                    })
                    .collect(),
            ),
            ("_autodiscover._tcp.s1k.example.", RecordType::SRV) => Some(
                (0..1000)
                    .map(|i| {
                        let target = Name::from_str(&format!("t{i}.s1k.example.")).unwrap();
                        Record::from_rdata(
                            query.name().clone(),
                            60,
                            RData::SRV(SRV::new(i as u16, 0, 443, target)),
                        )
                    })
                    .collect(),
            ),
            (other, RecordType::A) if target_index(other).is_some() => {
                let index = target_index(other).unwrap_or(0);
                Some(vec![Record::from_rdata(
                    query.name().clone(),
                    60,
                    RData::A(A(blackholed(index))),
                )])
            }
            (
                "autodiscover.many.example."
                | "many.example."
                | "s1k.example."
                | "autodiscover.s1k.example.",
                _,
            ) => Some(Vec::new()),
            (other, _) if other.ends_with(".s1k.example.") => Some(Vec::new()),
            _ => None,
        };
        match records {
            Some(records) => {
                let mut response = Message::response(request.metadata.id, request.metadata.op_code);
                response.metadata.authoritative = true;
                response.metadata.recursion_desired = request.metadata.recursion_desired;
                response.queries = request.queries.clone();
                response.add_answers(records);
                response
            }
            None => {
                let mut response = Message::error_msg(
                    request.metadata.id,
                    request.metadata.op_code,
                    ResponseCode::NXDomain,
                );
                response.queries = request.queries.clone();
                response
            }
        }
    }

    /// Serves on 127.0.0.1, UDP (truncating above 512 bytes) and TCP on one port.
    pub async fn start() -> (SocketAddr, Log, Vec<tokio::task::JoinHandle<()>>) {
        let log: Log = Arc::default();
        let (udp, tcp, address) = loop {
            let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = tcp.local_addr().unwrap();
            if let Ok(udp) = tokio::net::UdpSocket::bind(address).await {
                break (udp, tcp, address);
            }
        };
        let udp_log = log.clone();
        let udp_task = tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            while let Ok((len, peer)) = udp.recv_from(&mut buffer).await {
                let Ok(request) = Message::from_vec(&buffer[..len]) else {
                    continue;
                };
                if let Some(query) = request.queries.first() {
                    udp_log.lock().unwrap().push((
                        Instant::now(),
                        format!("udp {} {}", query.name(), query.query_type()),
                    ));
                }
                let mut response = answer(&request);
                let mut bytes = response.to_vec().unwrap();
                if bytes.len() > 512 {
                    response.answers.clear();
                    response.metadata.truncation = true;
                    bytes = response.to_vec().unwrap();
                }
                let _ = udp.send_to(&bytes, peer).await;
            }
        });
        let tcp_log = log.clone();
        let tcp_task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let log = tcp_log.clone();
                tokio::spawn(async move {
                    loop {
                        let Ok(len) = stream.read_u16().await else {
                            return;
                        };
                        let mut buffer = vec![0u8; usize::from(len)];
                        if stream.read_exact(&mut buffer).await.is_err() {
                            return;
                        }
                        let Ok(request) = Message::from_vec(&buffer) else {
                            return;
                        };
                        if let Some(query) = request.queries.first() {
                            log.lock().unwrap().push((
                                Instant::now(),
                                format!("tcp {} {}", query.name(), query.query_type()),
                            ));
                        }
                        let bytes = answer(&request).to_vec().unwrap();
                        let Ok(len) = u16::try_from(bytes.len()) else {
                            return;
                        };
                        if stream.write_u16(len).await.is_err()
                            || stream.write_all(&bytes).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        (address, log, vec![udp_task, tcp_task])
    }
}

async fn hostile_dns_prober() -> (
    autodiscover_exporter::probe::Prober,
    std::sync::Arc<sockets::Counts>,
    hostile_dns::Log,
    autodiscover_exporter::lab::world::World,
    Vec<tokio::task::JoinHandle<()>>,
) {
    use autodiscover_exporter::net::dns::{Dns, DnsProtocol};
    let world = autodiscover_exporter::lab::world::WorldBuilder::new()
        .unwrap()
        .start()
        .await
        .unwrap();
    let (address, log, tasks) = hostile_dns::start().await;
    let counts = std::sync::Arc::new(sockets::Counts::default());
    let dns = Dns::new(
        &[address],
        DnsProtocol::Udp,
        std::time::Duration::from_secs(2),
    )
    .unwrap();
    let connector = sockets::Counting {
        inner: world.connector(),
        counts: counts.clone(),
    };
    let prober = autodiscover_exporter::probe::Prober::new(
        dns,
        world.trust(),
        std::sync::Arc::new(connector),
    );
    (prober, counts, log, world, tasks)
}

/// Hosts that lead where a probe must not go: link-local, unspecified, multicast, IP literals,
/// loopback, and redirects that carry credentials.
fn destinations_world() -> autodiscover_exporter::lab::world::WorldBuilder {
    use autodiscover_exporter::lab::pki::Validity;
    use autodiscover_exporter::lab::site::Behaviour;
    use autodiscover_exporter::lab::world::WorldBuilder;
    let mut w = WorldBuilder::new().unwrap();
    w.zone(
        "metadata.example",
        "@ A 169.254.169.254\nautodiscover A 0.0.0.0\nautodiscover AAAA fe80::1\n\
         _autodiscover._tcp SRV 0 0 443 multi.metadata.example.\nmulti A 224.0.0.1",
    );
    let redirector = |ca: &autodiscover_exporter::lab::pki::TestCa, name: &str| {
        ca.issue(&[name], Validity::ValidFor { days: 365 }).unwrap()
    };
    let literal = redirector(w.ca(), "autodiscover.literal.example");
    w.https(
        "203.0.113.80",
        literal,
        Behaviour::Redirect {
            status: 302,
            location: "https://127.0.0.1/autodiscover/autodiscover.xml".into(),
        },
    );
    w.zone("literal.example", "autodiscover A 203.0.113.80");
    let userinfo = redirector(w.ca(), "autodiscover.userinfo.example");
    w.https(
        "203.0.113.81",
        userinfo,
        Behaviour::Redirect {
            status: 302,
            location:
                "https://admin:hunter2@autodiscover.literal.example/autodiscover/autodiscover.xml"
                    .into(),
        },
    );
    w.zone("userinfo.example", "autodiscover A 203.0.113.81");
    w
}

fn codes(report: &autodiscover_exporter::model::report::ProbeReport) -> Vec<&str> {
    report.findings.iter().map(|f| f.code.as_str()).collect()
}

#[tokio::test]
async fn link_local_unspecified_and_multicast_addresses_are_never_connected() {
    use autodiscover_exporter::model::step::{StepId, StepStatus};
    use std::sync::atomic::Ordering;
    let world = destinations_world().start().await.unwrap();
    let (prober, counts) = counting_prober(&world).await;
    let report = support::probe(&prober, "metadata.example").await;
    assert_eq!(
        counts.attempts.load(Ordering::SeqCst),
        0,
        "a forbidden address was connected"
    );
    for step in [
        StepId::RootDomain,
        StepId::AutodiscoverDomain,
        StepId::SrvRecord,
    ] {
        let trace = report.step(step).unwrap();
        assert_eq!(trace.status, StepStatus::RedirectInvalid, "{step}");
        assert!(
            !trace.hops.last().unwrap().refused_addresses.is_empty(),
            "{step}"
        );
    }
    let refused: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.code.as_str() == "address_refused")
        .map(|f| f.message.as_str())
        .collect();
    for needle in ["169.254.169.254", "0.0.0.0", "fe80::1", "224.0.0.1"] {
        assert!(
            refused.iter().any(|m| m.contains(needle)),
            "{needle}: {refused:?}"
        );
    }
    let text = autodiscover_exporter::render::trace::render(
        &report,
        autodiscover_exporter::render::trace::Colour::Off,
    );
    assert!(
        text.contains("169.254.169.254  not tried: a link-local address"),
        "{text}"
    );
}

#[tokio::test]
async fn loopback_through_a_redirect_is_flagged_and_refused_on_request() {
    use autodiscover_exporter::model::step::{StepId, StepStatus};
    use autodiscover_exporter::protocol::destination::AddressPolicy;
    use std::sync::atomic::Ordering;
    let world = destinations_world().start().await.unwrap();
    let (prober, counts) = counting_prober(&world).await;
    let report = support::probe(&prober, "literal.example").await;
    let found = codes(&report);
    assert!(found.contains(&"ip_literal_host"), "{found:?}");
    assert!(found.contains(&"internal_address"), "{found:?}");
    let tried = counts.attempts.load(Ordering::SeqCst);
    assert!(
        tried >= 2,
        "the loopback target was not tried by default ({tried})"
    );

    let (prober, counts) = counting_prober(&world).await;
    let strict = prober.with_address_policy(AddressPolicy {
        refuse_private: true,
    });
    let report = support::probe(&strict, "literal.example").await;
    let step = report.step(StepId::AutodiscoverDomain).unwrap();
    assert_eq!(step.status, StepStatus::RedirectInvalid);
    let last = step.hops.last().unwrap();
    assert_eq!(last.url, "https://127.0.0.1/autodiscover/autodiscover.xml");
    assert!(last.addresses.is_empty());
    assert!(
        codes(&report).contains(&"address_refused"),
        "{:?}",
        report.findings
    );
    // only the redirector itself (443 and the port-80 step's GET) was connected
    assert!(counts.attempts.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn redirects_with_credentials_are_refused_without_showing_them() {
    use autodiscover_exporter::model::step::{StepId, StepStatus};
    let world = destinations_world().start().await.unwrap();
    let (prober, _) = counting_prober(&world).await;
    let report = support::probe(&prober, "userinfo.example").await;
    let step = report.step(StepId::AutodiscoverDomain).unwrap();
    assert_eq!(step.status, StepStatus::RedirectInvalid);
    assert_eq!(step.hops.len(), 1, "the redirect was followed");
    assert!(codes(&report).contains(&"redirect_refused"));
    let json = serde_json::to_string(&report).unwrap();
    let text = autodiscover_exporter::render::trace::render(
        &report,
        autodiscover_exporter::render::trace::Colour::Off,
    );
    assert!(text.contains("user information"), "{text}");
    for shown in [&json, &text] {
        assert!(!shown.contains("hunter2"), "the password is shown");
    }
}

#[tokio::test]
async fn a_refused_redirect_keeps_no_endpoint_found_anywhere() {
    use autodiscover_exporter::lab::pki::Validity;
    use autodiscover_exporter::lab::site::Behaviour;
    use autodiscover_exporter::model::step::{StepId, StepStatus};
    let mut w = autodiscover_exporter::lab::world::WorldBuilder::new().unwrap();
    // autodiscover.back.example redirects to a server whose redirectAddr names the probed
    // address again: a loop, refused after the redirect hop was already counted as found.
    let first = w
        .ca()
        .issue(
            &["autodiscover.back.example"],
            Validity::ValidFor { days: 365 },
        )
        .unwrap();
    w.https(
        "203.0.113.90",
        first,
        Behaviour::Redirect {
            status: 302,
            location: "https://mail.back.example/autodiscover/autodiscover.xml".into(),
        },
    );
    let second = w
        .ca()
        .issue(&["mail.back.example"], Validity::ValidFor { days: 365 })
        .unwrap();
    w.https(
        "203.0.113.91",
        second,
        Behaviour::RedirectAddr {
            address: "someone@back.example".into(),
        },
    );
    w.zone(
        "back.example",
        "autodiscover A 203.0.113.90\nmail A 203.0.113.91",
    );
    let world = w.start().await.unwrap();
    let prober = world.prober().unwrap();
    let report = support::probe(&prober, "back.example").await;
    let step = report.step(StepId::AutodiscoverDomain).unwrap();
    assert_eq!(step.status, StepStatus::RedirectInvalid);
    assert_eq!(step.hops.len(), 2, "{:#?}", step.hops);
    for hop in &step.hops {
        assert_ne!(hop.status, StepStatus::EndpointFound, "{}", hop.url);
        for attempt in &hop.addresses {
            assert_ne!(attempt.status, StepStatus::EndpointFound, "{}", hop.url);
        }
    }
    let json = serde_json::to_value(&report).unwrap();
    let step_json = &json["steps"][2];
    assert_eq!(step_json["step"], "autodiscover_domain");
    assert!(
        !step_json.to_string().contains("endpoint_found"),
        "{step_json:#}"
    );
    assert!(report.endpoint.is_none());
}

#[tokio::test]
async fn an_unparseable_leaf_exports_no_expiry_and_the_trace_says_why() {
    use autodiscover_exporter::diagnose::{self, Expectations};
    use autodiscover_exporter::lab::pki::Validity;
    use autodiscover_exporter::lab::site::Behaviour;
    use autodiscover_exporter::model::step::StepId;
    use autodiscover_exporter::net::certificate;
    use autodiscover_exporter::render::{metrics, trace};
    let mut w = autodiscover_exporter::lab::world::WorldBuilder::new().unwrap();
    let identity = w
        .ca()
        .issue(
            &["autodiscover.odd.example"],
            Validity::ValidFor { days: 5 },
        )
        .unwrap();
    w.https("203.0.113.95", identity, Behaviour::Exchange);
    w.zone("odd.example", "autodiscover A 203.0.113.95");
    let world = w.start().await.unwrap();
    let prober = world.prober().unwrap();
    let mut report = support::probe(&prober, "odd.example").await;
    // What the facts look like when x509-parser cannot read the leaf the server presented.
    let step = report
        .steps
        .iter_mut()
        .find(|s| s.step == StepId::AutodiscoverDomain)
        .unwrap();
    let tls = step.hops[0].addresses[0].tls.as_mut().unwrap();
    tls.chain[0] = certificate::facts(b"\x30\x03\x02\x01\x01", 0);
    report.findings = diagnose::explain(&report, &Expectations::default());

    let labels = metrics::domain_labels("odd.example", &Default::default());
    let samples = metrics::render_domain(&report, &labels, std::time::Duration::from_secs(300));
    let mut exposition = String::new();
    metrics::write_domains(
        &mut exposition,
        metrics::Format::Classic,
        std::iter::once(&samples),
    )
    .unwrap();
    for family in [
        "autodiscover_certificate_days_to_expiry{",
        "autodiscover_certificate_not_after_timestamp_seconds{",
    ] {
        assert!(
            !exposition.contains(&format!(
                "{family}domain=\"odd.example\",step=\"autodiscover_domain\""
            )),
            "{family} exported for an unparseable leaf:\n{exposition}"
        );
    }
    assert!(exposition.contains(
        "autodiscover_certificate_name_mismatch{domain=\"odd.example\",step=\"autodiscover_domain\",host=\"autodiscover.odd.example\"} 0"
    ), "{exposition}");
    let text = trace::render(&report, trace::Colour::Off);
    assert!(text.contains("cannot be parsed ("), "{text}");
    assert!(text.contains("no expiry is exported"), "{text}");
    assert!(!text.contains("1970"), "{text}");
    let codes = codes(&report);
    assert!(
        !codes.contains(&"certificate_expiring") && !codes.contains(&"certificate_expired"),
        "{:?}",
        report.findings
    );
}

#[tokio::test]
async fn identical_probe_requests_share_one_probe() {
    let yaml = "defaults:\n  timeout: 8s\n  step_timeout: 5s\n  phase_timeout: 2s\nallow_any_target: true\n";
    let running = RunningExporter::start(fixed(yaml), None).await;
    let address = running.address;
    let requests = (0..5).map(|_| {
        tokio::spawn(async move {
            request(address, "GET", "/probe?target=blackhole.example", &[]).await
        })
    });
    let answers = futures_util::future::join_all(requests).await;
    let durations: Vec<String> = answers
        .into_iter()
        .map(|answer| {
            let answer = answer.unwrap();
            assert_eq!(answer.status, 200, "{}", answer.body);
            answer
                .body
                .lines()
                .find(|l| l.starts_with("autodiscover_probe_duration_seconds{"))
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        durations.iter().all(|d| d == &durations[0]),
        "five probes instead of one: {durations:#?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn on_demand_probes_take_a_concurrency_slot_or_get_503() {
    let yaml = "defaults:\n  timeout: 8s\n  step_timeout: 5s\n  phase_timeout: 2s\nallow_any_target: true\nconcurrency: 1\n";
    let running = RunningExporter::start(fixed(yaml), None).await;
    let address = running.address;
    // blackhole.example takes about 2 s (its bare domain drops packets) and holds the only slot.
    let slow = tokio::spawn(async move {
        request(address, "GET", "/probe?target=blackhole.example", &[]).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let busy = request(
        address,
        "GET",
        "/probe?target=companya.example",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    )
    .await;
    assert_eq!(busy.status, 503, "{}", busy.body);
    assert!(busy.body.contains("concurrency"), "{}", busy.body);
    assert_eq!(busy.headers["retry-after"], "5");
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
    assert_eq!(slow.await.unwrap().status, 200);
    let free = request(address, "GET", "/probe?target=companya.example", &[]).await;
    assert_eq!(free.status, 200, "{}", free.body);
    running.stop().await;
}

#[tokio::test]
async fn password_checks_are_bounded_and_answered_429_past_the_bound() {
    use autodiscover_exporter::exporter::web_config::{MAX_PASSWORD_CHECKS, WebConfig};
    let dir = std::env::temp_dir().join(format!("autodiscover-bcrypt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hash = bcrypt::hash("s3cret", 9).unwrap();
    std::fs::write(
        dir.join("web.yml"),
        format!("basic_auth_users:\n  prometheus: \"{hash}\"\n"),
    )
    .unwrap();
    let web = WebConfig::load(&dir.join("web.yml")).unwrap();
    let running = RunningExporter::start(fixed(&config_yaml(&SEED[1..])), Some(web)).await;
    let address = running.address;
    use base64::Engine;
    let requests = (0..8).map(|i| {
        let user = if i % 2 == 0 { "prometheus" } else { "nobody" };
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:wrong-{i}"));
        tokio::spawn(async move {
            request(
                address,
                "GET",
                "/metrics",
                &[("Authorization", &format!("Basic {credentials}"))],
            )
            .await
            .status
        })
    });
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    let denied = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(limited + denied, 8, "{statuses:?}");
    assert!(limited >= 1, "no request was turned away: {statuses:?}");
    assert!(denied >= MAX_PASSWORD_CHECKS, "{statuses:?}");
    // the good password gets through once a slot is free, and is remembered afterwards
    let good = base64::engine::general_purpose::STANDARD.encode("prometheus:s3cret");
    let header = format!("Basic {good}");
    let ok = request(address, "GET", "/metrics", &[("Authorization", &header)]).await;
    assert_eq!(ok.status, 200);
    running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn options(
    enable_lifecycle: bool,
    web: Option<autodiscover_exporter::exporter::web_config::WebConfig>,
) -> autodiscover_exporter::exporter::web::WebOptions {
    autodiscover_exporter::exporter::web::WebOptions {
        config: web.map(std::sync::Arc::new),
        enable_lifecycle,
        ..Default::default()
    }
}

/// Past `max_connections`, a client waits in the listen backlog instead of holding one of the
/// exporter's file descriptors (2,000 waiting `/probe` requests under a 1,024 limit took every
/// descriptor, and every probe of a healthy domain became `probe_error`): with both slots held
/// by idle connections, a scrape is answered only once one of them goes away.
#[tokio::test]
async fn connections_past_the_bound_wait_in_the_backlog() {
    use autodiscover_exporter::lab::scenarios;
    let options = autodiscover_exporter::exporter::web::WebOptions {
        max_connections: 2,
        ..Default::default()
    };
    let running = RunningExporter::start_with_options(
        scenarios::world().unwrap(),
        fixed(&config_yaml(SEED)),
        options,
    )
    .await;
    let idle = tokio::net::TcpStream::connect(running.address)
        .await
        .unwrap();
    let _also_idle = tokio::net::TcpStream::connect(running.address)
        .await
        .unwrap();
    let address = running.address;
    let scrape = tokio::spawn(async move { request(address, "GET", "/metrics", &[]).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !scrape.is_finished(),
        "a third connection was served while two held every slot"
    );
    drop(idle);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), scrape)
        .await
        .expect("the scrape is served once a slot is free")
        .unwrap();
    assert_eq!(answer.status, 200);
    running.stop().await;
}

#[tokio::test]
async fn reload_over_http_needs_the_lifecycle_flag_and_the_same_origin() {
    use autodiscover_exporter::lab::scenarios;
    let source = fixed(&config_yaml(&SEED[1..]));
    let off = RunningExporter::start_with_options(
        scenarios::world().unwrap(),
        source.clone(),
        options(false, None),
    )
    .await;
    let answer = request(off.address, "POST", "/-/reload", &[]).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(
        answer.body.contains("--web.enable-lifecycle"),
        "{}",
        answer.body
    );
    // what SIGHUP does still works
    assert_eq!(
        autodiscover_exporter::exporter::web::reload(&off.exporter).await,
        Ok(1)
    );
    off.stop().await;

    let on = RunningExporter::start_with_options(
        scenarios::world().unwrap(),
        source,
        options(true, None),
    )
    .await;
    let host = on.address.to_string();
    let foreign = request(
        on.address,
        "POST",
        "/-/reload",
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let same = request(
        on.address,
        "POST",
        "/-/reload",
        &[("Origin", &format!("http://{host}"))],
    )
    .await;
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(
        request(on.address, "POST", "/-/reload", &[]).await.status,
        200
    );
    on.stop().await;
}

#[tokio::test]
async fn reload_over_http_needs_basic_auth_when_configured() {
    use autodiscover_exporter::exporter::web_config::WebConfig;
    use autodiscover_exporter::lab::scenarios;
    let dir = std::env::temp_dir().join(format!("autodiscover-reload-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(
        dir.join("web.yml"),
        format!("basic_auth_users:\n  prometheus: \"{hash}\"\n"),
    )
    .unwrap();
    let web = WebConfig::load(&dir.join("web.yml")).unwrap();
    let running = RunningExporter::start_with_options(
        scenarios::world().unwrap(),
        fixed(&config_yaml(&SEED[1..])),
        options(true, Some(web)),
    )
    .await;
    assert_eq!(
        request(running.address, "POST", "/-/reload", &[])
            .await
            .status,
        401
    );
    // base64("prometheus:s3cret")
    let good = [("Authorization", "Basic cHJvbWV0aGV1czpzM2NyZXQ=")];
    assert_eq!(
        request(running.address, "POST", "/-/reload", &good)
            .await
            .status,
        200
    );
    running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn every_response_carries_nosniff_and_a_strict_content_security_policy() {
    use base64::Engine;
    use sha2::Digest;
    let running = RunningExporter::start(fixed(&config_yaml(SEED)), None).await;
    for path in [
        "/",
        "/metrics",
        "/domains/companyb.example",
        "/domains/unknown.example",
        "/probe",
        "/-/healthy",
        "/nope",
    ] {
        let answer = request(running.address, "GET", path, &[]).await;
        assert_eq!(
            answer.headers["x-content-type-options"], "nosniff",
            "{path}"
        );
        let policy = answer.headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.starts_with("default-src 'none';"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("script-src"), "{path}: {policy}");
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
    }
    let page = request(running.address, "GET", "/", &[]).await;
    let style = page
        .body
        .split("<style>")
        .nth(1)
        .and_then(|rest| rest.split("</style>").next())
        .unwrap();
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style));
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains(&format!("style-src 'sha256-{hash}'")),
        "the page's stylesheet is not allowed by {policy}"
    );
    assert!(!page.body.contains("<script"));
    running.stop().await;
}

#[tokio::test]
async fn shutdown_lets_open_requests_finish_within_the_grace_period() {
    use autodiscover_exporter::lab::scenarios;
    let yaml = "defaults:\n  timeout: 8s\n  step_timeout: 5s\n  phase_timeout: 2s\nallow_any_target: true\n";
    for (grace, finishes) in [
        (std::time::Duration::from_secs(10), true),
        (std::time::Duration::ZERO, false),
    ] {
        let mut web = options(false, None);
        web.shutdown_grace = grace;
        let mut running =
            RunningExporter::start_with_options(scenarios::world().unwrap(), fixed(yaml), web)
                .await;
        let address = running.address;
        // about 2 s: the bare domain drops packets
        let slow = tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let request = hyper::Request::get("/probe?target=blackhole.example")
                .header("Host", address.to_string())
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            sender
                .send_request(request)
                .await
                .map(|r| r.status().as_u16())
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let server = running.shut_down().unwrap();
        let status = slow.await.unwrap();
        assert_eq!(status.is_ok(), finishes, "grace {grace:?}: {status:?}");
        if finishes {
            assert_eq!(status.unwrap(), 200);
        }
        tokio::time::timeout(std::time::Duration::from_secs(15), server)
            .await
            .unwrap()
            .unwrap();
        running.stop().await;
    }
}
