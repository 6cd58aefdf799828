#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The NS and SOA lookups of a domain's delegation keep NXDOMAIN, NODATA, SERVFAIL, REFUSED and
//! silence apart, like every other lookup, and the report carries them.

mod support;

use autodiscover_exporter::lab::scenarios;
use autodiscover_exporter::model::facts::{DnsAnswer, MAX_NAMESERVERS, Soa};
use autodiscover_exporter::net::dns::{Dns, DnsProtocol};
use hickory_server::proto::op::{Message, ResponseCode};
use std::time::Duration;
use tokio::net::UdpSocket;

const BUDGET: Duration = Duration::from_secs(2);

fn dns(nameserver: std::net::SocketAddr) -> Dns {
    Dns::new(&[nameserver], DnsProtocol::Udp, Duration::from_millis(300)).unwrap()
}

#[tokio::test]
async fn a_zone_apex_has_its_ns_set_and_soa() {
    let (world, prober) = support::world().await;
    let delegation = dns(world.nameserver())
        .lookup_delegation("companyc.example", BUDGET)
        .await;
    assert_eq!(delegation.ns_answer, DnsAnswer::Records { count: 2 });
    assert_eq!(
        delegation.nameservers,
        ["ns1.old-dns.example", "ns2.old-dns.example"]
    );
    assert_eq!(
        delegation.nameservers_joined(),
        "ns1.old-dns.example,ns2.old-dns.example"
    );
    assert_eq!(
        delegation.soa,
        Some(Soa {
            primary: "ns1.old-dns.example".into(),
            serial: 2024010101
        })
    );
    // The probe asks too, and the report carries it.
    let report = support::probe(&prober, "companyc.example").await;
    assert_eq!(
        report.delegation.unwrap().nameservers,
        delegation.nameservers
    );

    // After the provider change the same server answers with the new zone.
    let (zone, records) = scenarios::provider_change();
    world.replace_zone(zone, &records).await.unwrap();
    let after = dns(world.nameserver())
        .lookup_delegation("companyc.example", BUDGET)
        .await;
    assert_eq!(
        after.nameservers,
        ["ns1.new-dns.example", "ns2.new-dns.example"]
    );
    assert_eq!(after.soa.unwrap().serial, 2026113001);
}

#[tokio::test]
async fn names_below_the_apex_and_missing_names_are_told_apart() {
    let (world, _) = support::world().await;
    let dns = dns(world.nameserver());
    // www.companyc.example exists (an A record) but is no zone apex: NODATA for both.
    let below = dns.lookup_delegation("www.companyc.example", BUDGET).await;
    assert_eq!(below.ns_answer, DnsAnswer::NoData);
    assert_eq!(below.soa_answer, DnsAnswer::NoData);
    assert!(below.nameservers.is_empty() && below.soa.is_none());
    assert!(!below.nameservers_known());
    let missing = dns.lookup_delegation("nope.companyc.example", BUDGET).await;
    assert_eq!(missing.ns_answer, DnsAnswer::NxDomain);
    assert_eq!(missing.soa_answer, DnsAnswer::NxDomain);
    // A zone the server does not serve: REFUSED.
    let refused = dns.lookup_delegation("unserved.test", BUDGET).await;
    assert_eq!(refused.ns_answer, DnsAnswer::Refused);
}

#[tokio::test]
async fn servfail_and_silence_are_errors_not_empty_sets() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buffer = [0u8; 1500];
        while let Ok((len, peer)) = socket.recv_from(&mut buffer).await {
            let Ok(request) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let mut response = Message::error_msg(
                request.metadata.id,
                request.metadata.op_code,
                ResponseCode::ServFail,
            );
            response.queries = request.queries.clone();
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    let failing = dns(address)
        .lookup_delegation("broken.example", BUDGET)
        .await;
    task.abort();
    assert_eq!(failing.ns_answer, DnsAnswer::ServFail);
    assert_eq!(failing.soa_answer, DnsAnswer::ServFail);
    assert!(!failing.nameservers_known());

    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let quiet = dns(silent.local_addr().unwrap())
        .lookup_delegation("companya.example", Duration::from_millis(800))
        .await;
    assert!(
        quiet.ns_answer.is_transport_failure(),
        "{:?}",
        quiet.ns_answer
    );
    assert!(quiet.duration_seconds < 2.0);
}

#[tokio::test]
async fn a_huge_ns_set_is_cut_to_a_bound() {
    let mut builder = autodiscover_exporter::lab::world::WorldBuilder::new().unwrap();
    let records: String = (0..60)
        .map(|i| format!("@ NS ns{i:02}.many.example.\n"))
        .collect();
    builder.zone("many.example", &records);
    let world = builder.start().await.unwrap();
    let delegation = dns(world.nameserver())
        .lookup_delegation("many.example", BUDGET)
        .await;
    assert_eq!(delegation.ns_answer, DnsAnswer::Records { count: 60 });
    assert_eq!(delegation.nameservers.len(), MAX_NAMESERVERS);
    assert_eq!(delegation.nameservers[0], "ns00.many.example");
}
