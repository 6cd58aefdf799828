//! DNS through hickory-resolver: A/AAAA with their CNAME chain, and SRV, with NXDOMAIN, NODATA,
//! SERVFAIL and timeouts kept apart. Caching is off: every probe sees the live DNS.

use crate::model::facts::{
    CnameHop, Delegation, DnsAnswer, HostLookup, MAX_ADDRESSES_PER_HOST, MAX_NAMESERVERS, Soa,
    SrvLookup, SrvRecord,
};
use crate::protocol::srv;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

/// Most CNAME hops recorded for one lookup.
const MAX_CNAME_HOPS: usize = 16;

/// Transport used to reach configured name servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsProtocol {
    /// UDP, with TCP when an answer is truncated.
    #[default]
    Udp,
    /// TCP only.
    Tcp,
}

/// The resolver could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the DNS resolver: {0}")]
pub struct DnsSetupError(#[source] NetError);

/// A non-caching resolver.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    query_timeout: Duration,
    description: String,
}

impl Dns {
    /// A resolver for the given servers, or the system's (`/etc/resolv.conf`) when empty.
    pub fn new(
        nameservers: &[SocketAddr],
        protocol: DnsProtocol,
        query_timeout: Duration,
    ) -> Result<Self, DnsSetupError> {
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(DnsSetupError)?
        } else {
            let mut config = ResolverConfig::from_parts(None, vec![], vec![]);
            for server in nameservers {
                let mut connections = match protocol {
                    DnsProtocol::Udp => vec![ConnectionConfig::udp(), ConnectionConfig::tcp()],
                    DnsProtocol::Tcp => vec![ConnectionConfig::tcp()],
                };
                for connection in &mut connections {
                    connection.port = server.port();
                }
                config.add_name_server(NameServerConfig::new(server.ip(), true, connections));
            }
            Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        };
        let options = builder.options_mut();
        *options = tuned(options.clone(), query_timeout);
        let resolver = builder.build().map_err(DnsSetupError)?;
        let description = if nameservers.is_empty() {
            "the system resolver (/etc/resolv.conf)".to_owned()
        } else {
            let servers: Vec<String> = nameservers.iter().map(ToString::to_string).collect();
            servers.join(", ")
        };
        Ok(Self {
            resolver,
            query_timeout,
            description,
        })
    }

    /// Which servers it asks, for traces.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Looks up A and AAAA of `host` (concurrently), recording the CNAME chain.
    pub async fn lookup_host(&self, host: &str, budget: Duration) -> HostLookup {
        let started = Instant::now();
        let fqdn = fully_qualified(host);
        let (a, aaaa) = tokio::join!(
            self.query(&fqdn, RecordType::A, budget),
            self.query(&fqdn, RecordType::AAAA, budget)
        );
        let mut cname_chain = Vec::new();
        let mut addresses = Vec::new();
        for (_, records) in [&a, &aaaa] {
            for record in records {
                match &record.data {
                    RData::CNAME(cname) => {
                        let hop = CnameHop {
                            name: trim_dot(&record.name.to_ascii()),
                            target: trim_dot(&cname.0.to_ascii()),
                            ttl: record.ttl,
                        };
                        if !cname_chain.contains(&hop) {
                            cname_chain.push(hop);
                        }
                    }
                    RData::A(a) => addresses.push(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => addresses.push(IpAddr::V6(aaaa.0)),
                    _ => {}
                }
            }
        }
        // A dangling CNAME fails as NXDOMAIN of its target; ask for the CNAME itself so the
        // trace can show where the name points.
        if addresses.is_empty() && cname_chain.is_empty() && a.0.is_negative() {
            let (_, records) = self.query(&fqdn, RecordType::CNAME, budget).await;
            for record in records {
                if let RData::CNAME(cname) = &record.data {
                    cname_chain.push(CnameHop {
                        name: trim_dot(&record.name.to_ascii()),
                        target: trim_dot(&cname.0.to_ascii()),
                        ttl: record.ttl,
                    });
                }
            }
        }
        let (addresses, published) = distinct_capped(&addresses, MAX_ADDRESSES_PER_HOST);
        cname_chain.truncate(MAX_CNAME_HOPS);
        HostLookup {
            host: host.to_owned(),
            cname_chain,
            addresses,
            addresses_published: published,
            a: a.0,
            aaaa: aaaa.0,
            duration_seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// Looks up the SRV records of `name`.
    pub async fn lookup_srv(&self, name: &str, budget: Duration) -> SrvLookup {
        let started = Instant::now();
        let (answer, records) = self
            .query(&fully_qualified(name), RecordType::SRV, budget)
            .await;
        let records = records
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(SrvRecord {
                    target: trim_dot(&srv.target.to_ascii()),
                    port: srv.port,
                    priority: srv.priority,
                    weight: srv.weight,
                }),
                _ => None,
            })
            .collect::<Vec<_>>();
        let published = records.len();
        // A hostile zone can publish thousands: keep those a client tries first.
        let mut records = srv::ordered(&records);
        records.truncate(srv::MAX_SRV_RECORDS);
        SrvLookup {
            name: name.to_owned(),
            answer,
            records,
            records_published: published,
            duration_seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// Looks up the NS set and the SOA of `domain` (concurrently). NXDOMAIN, NODATA, SERVFAIL
    /// and timeouts stay apart in the answers; at most [`MAX_NAMESERVERS`] names are kept.
    pub async fn lookup_delegation(&self, domain: &str, budget: Duration) -> Delegation {
        let started = Instant::now();
        let fqdn = fully_qualified(domain);
        let ((ns_answer, ns_records), (soa_answer, soa_records)) = tokio::join!(
            self.query(&fqdn, RecordType::NS, budget),
            self.query(&fqdn, RecordType::SOA, budget)
        );
        let mut nameservers: Vec<String> = ns_records
            .iter()
            .filter_map(|record| match &record.data {
                RData::NS(ns) => Some(trim_dot(&ns.0.to_ascii())),
                _ => None,
            })
            .collect();
        nameservers.sort();
        nameservers.dedup();
        nameservers.truncate(MAX_NAMESERVERS);
        let soa = soa_records.iter().find_map(|record| match &record.data {
            RData::SOA(soa) => Some(Soa {
                primary: trim_dot(&soa.mname.to_ascii()),
                serial: soa.serial,
            }),
            _ => None,
        });
        Delegation {
            ns_answer,
            nameservers,
            soa_answer,
            soa,
            duration_seconds: started.elapsed().as_secs_f64(),
        }
    }

    async fn query(
        &self,
        name: &str,
        record_type: RecordType,
        budget: Duration,
    ) -> (DnsAnswer, Vec<hickory_resolver::proto::rr::Record>) {
        if budget.is_zero() {
            // No time left: the query is not sent at all (a zero timeout still sends once).
            return (DnsAnswer::Timeout, Vec::new());
        }
        // The resolver's own timeout covers one attempt; the outer one bounds retries as well.
        let limit = budget.min(self.query_timeout * 2 + Duration::from_millis(200));
        match tokio::time::timeout(limit, self.resolver.lookup(name, record_type)).await {
            Err(_) => (DnsAnswer::Timeout, Vec::new()),
            Ok(Err(error)) => (classify_error(&error), Vec::new()),
            Ok(Ok(lookup)) => {
                let records: Vec<_> = lookup.answers().to_vec();
                let count = records
                    .iter()
                    .filter(|r| r.record_type() == record_type)
                    .count();
                let answer = if count == 0 {
                    DnsAnswer::NoData
                } else {
                    DnsAnswer::Records { count }
                };
                (answer, records)
            }
        }
    }
}

fn tuned(mut options: ResolverOpts, query_timeout: Duration) -> ResolverOpts {
    options.timeout = query_timeout;
    options.attempts = 1;
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    options.preserve_intermediates = true;
    options.ndots = 0;
    options
}

/// Maps hickory's errors onto the answers a trace distinguishes.
fn classify_error(error: &NetError) -> DnsAnswer {
    match error {
        NetError::Timeout => DnsAnswer::Timeout,
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => {
            if no_records.response_code == ResponseCode::NXDomain {
                DnsAnswer::NxDomain
            } else {
                DnsAnswer::NoData
            }
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => DnsAnswer::ServFail,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => DnsAnswer::Refused,
        NetError::Io(io) if super::connect::is_local_resource_error(io) => DnsAnswer::LocalError {
            detail: error.to_string(),
        },
        NetError::Io(_) | NetError::NoConnections | NetError::Busy => DnsAnswer::Unreachable {
            detail: error.to_string(),
        },
        other => DnsAnswer::Error {
            detail: other.to_string(),
        },
    }
}

/// The distinct addresses (first occurrence kept, wherever the duplicates are) and how many
/// there are; at most `cap` are kept, shared fairly between IPv4 and IPv6 (half each, the rest
/// to whichever family has more), each family in answer order.
fn distinct_capped(addresses: &[IpAddr], cap: usize) -> (Vec<IpAddr>, usize) {
    let mut seen = HashSet::new();
    let distinct: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|ip| seen.insert(*ip))
        .collect();
    let published = distinct.len();
    if published <= cap {
        return (distinct, published);
    }
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = distinct.into_iter().partition(IpAddr::is_ipv4);
    let take_v4 = v4.len().min(cap.saturating_sub(v6.len().min(cap / 2)));
    let take_v6 = v6.len().min(cap - take_v4);
    let mut kept: Vec<IpAddr> = v4.into_iter().take(take_v4).collect();
    kept.extend(v6.into_iter().take(take_v6));
    (kept, published)
}

fn fully_qualified(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

fn trim_dot(name: &str) -> String {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        ".".to_owned()
    } else {
        trimmed.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn v6(last: u16) -> IpAddr {
        IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, last])
    }

    #[test]
    fn duplicates_go_wherever_they_are() {
        let (kept, published) = distinct_capped(&[v4(1), v4(2), v4(1), v6(1), v4(2), v6(1)], 16);
        assert_eq!(kept, vec![v4(1), v4(2), v6(1)]);
        assert_eq!(published, 3);
    }

    #[test]
    fn the_cap_is_shared_between_families() {
        let mut many: Vec<IpAddr> = (1..=200).map(v4).collect();
        many.push(v6(1));
        let (kept, published) = distinct_capped(&many, 16);
        assert_eq!(published, 201);
        assert_eq!(kept.len(), 16);
        assert_eq!(kept[..15], (1..=15).map(v4).collect::<Vec<_>>()[..]);
        assert_eq!(kept[15], v6(1));
        let mut both: Vec<IpAddr> = (1..=20).map(v4).collect();
        both.extend((1..=20).map(v6));
        let (kept, _) = distinct_capped(&both, 16);
        assert_eq!(kept.iter().filter(|ip| ip.is_ipv4()).count(), 8);
        assert_eq!(kept.iter().filter(|ip| ip.is_ipv6()).count(), 8);
        let only_v6: Vec<IpAddr> = (1..=40).map(v6).collect();
        assert_eq!(distinct_capped(&only_v6, 16).0.len(), 16);
    }
}
