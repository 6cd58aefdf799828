#![allow(clippy::unwrap_used, clippy::expect_used)]

//! DNS failure kinds stay apart: NXDOMAIN and NODATA are "no record", SERVFAIL and REFUSED are
//! DNS errors, and a resolver that never answers makes the probe itself fail.

mod support;

use autodiscover_exporter::model::facts::DnsAnswer;
use autodiscover_exporter::model::step::{Outcome, StepId, StepStatus};
use autodiscover_exporter::net::dns::{Dns, DnsProtocol};
use autodiscover_exporter::probe::Prober;
use hickory_server::proto::op::{Message, ResponseCode};
use std::time::Duration;
use tokio::net::UdpSocket;

fn prober_for(
    world: &autodiscover_exporter::lab::world::World,
    nameserver: std::net::SocketAddr,
) -> Prober {
    let dns = Dns::new(&[nameserver], DnsProtocol::Udp, Duration::from_millis(300)).unwrap();
    Prober::new(dns, world.trust(), world.connector())
}

/// A name server that answers every query with `code`, until the task is dropped.
async fn answering(code: ResponseCode) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buffer = [0u8; 1500];
        while let Ok((len, peer)) = socket.recv_from(&mut buffer).await {
            let Ok(request) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let mut response =
                Message::error_msg(request.metadata.id, request.metadata.op_code, code);
            response.queries = request.queries.clone();
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    (address, task)
}

#[tokio::test]
async fn nxdomain_and_nodata_are_no_record() {
    let (_world, prober) = support::world().await;
    // companyc.example exists (SOA, NS) but has no address: NODATA; autodiscover.* is NXDOMAIN
    let report = support::probe(&prober, "companyc.example").await;
    let root = report.step(StepId::RootDomain).unwrap();
    let lookup = root.hops[0].lookup.as_ref().unwrap();
    assert_eq!(lookup.a, DnsAnswer::NoData);
    assert_eq!(root.status, StepStatus::DnsNoRecord);
    let lookup = report.step(StepId::AutodiscoverDomain).unwrap().hops[0]
        .lookup
        .clone()
        .unwrap();
    assert_eq!(lookup.a, DnsAnswer::NxDomain);
}

#[tokio::test]
async fn refused_and_servfail_are_dns_errors() {
    let (world, prober) = support::world().await;
    // the lab's server is not authoritative for this zone and refuses
    let report = support::probe(&prober, "unserved.test").await;
    assert_eq!(
        report.step(StepId::RootDomain).unwrap().status,
        StepStatus::DnsError
    );
    let srv = report.step(StepId::SrvRecord).unwrap().srv.clone().unwrap();
    assert_eq!(srv.answer, DnsAnswer::Refused);
    assert_eq!(report.outcome, Outcome::NotFound);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code.as_str() == "dns_failure")
    );

    let (address, task) = answering(ResponseCode::ServFail).await;
    let report = prober_for(&world, address)
        .probe(
            &mail_address("someone@broken.example"),
            &support::fast_options(),
        )
        .await;
    task.abort();
    let root = report.step(StepId::RootDomain).unwrap();
    assert_eq!(
        root.hops[0].lookup.as_ref().unwrap().a,
        DnsAnswer::ServFail,
        "{:#?}",
        root
    );
    assert_eq!(root.status, StepStatus::DnsError);
    assert_eq!(
        report
            .step(StepId::SrvRecord)
            .unwrap()
            .srv
            .as_ref()
            .unwrap()
            .answer,
        DnsAnswer::ServFail
    );
    assert_eq!(report.outcome, Outcome::NotFound);
}

#[tokio::test]
async fn a_silent_resolver_is_a_probe_error() {
    let (world, _) = support::world().await;
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let prober = prober_for(&world, silent.local_addr().unwrap());
    let report = support::probe_address(&prober, "someone@companya.example").await;
    assert_eq!(report.outcome, Outcome::ProbeError, "{:#?}", report.steps);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code.as_str() == "resolver_unreachable")
    );
    assert!(report.duration_seconds < 10.0);
}

fn mail_address(text: &str) -> autodiscover_exporter::model::address::MailAddress {
    autodiscover_exporter::model::address::MailAddress::parse(text).unwrap()
}
