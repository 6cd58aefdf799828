//! An authoritative DNS server (hickory-server) on loopback, serving zones held in memory.

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A zone could not be loaded or the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsServerError {
    /// The zone text does not parse.
    #[error("zone {origin}: {reason}")]
    Zone {
        /// The zone.
        origin: String,
        /// Why.
        reason: String,
    },
    /// A socket could not be bound.
    #[error("DNS server socket: {0}")]
    Io(#[from] std::io::Error),
}

type ZoneHandler = InMemoryZoneHandler<TokioRuntimeProvider>;

/// A running DNS server; dropping it stops it.
pub struct DnsServer {
    address: SocketAddr,
    zones: HashMap<String, Arc<ZoneHandler>>,
    _server: Server<Catalog>,
}

impl DnsServer {
    /// Serves `zones` (origin, records in zone-file syntax relative to the origin) on
    /// 127.0.0.1, UDP and TCP, on a random port. A zone without its own SOA or NS records gets
    /// `ns1.<origin>` with serial 1.
    pub async fn start(zones: &[(String, String)]) -> Result<Self, DnsServerError> {
        let mut catalog = Catalog::new();
        let mut handlers = HashMap::new();
        for (origin, records) in zones {
            let handler = Arc::new(zone_handler(origin, records)?);
            let name = hickory_server::zone_handler::ZoneHandler::origin(handler.as_ref()).clone();
            catalog.upsert(name, vec![handler.clone()]);
            handlers.insert(origin.clone(), handler);
        }
        let (udp, tcp, address) = bind_pair().await?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        Ok(Self {
            address,
            zones: handlers,
            _server: server,
        })
    }

    /// Replaces every record of the zone `origin` (served from the next query on), as a
    /// change of DNS provider would.
    pub async fn replace_zone(&self, origin: &str, records: &str) -> Result<(), DnsServerError> {
        let existing = self.zones.get(origin).ok_or_else(|| DnsServerError::Zone {
            origin: origin.to_owned(),
            reason: "no such zone in this server".into(),
        })?;
        let fresh = zone_handler(origin, records)?;
        let new_records = fresh.records().await.clone();
        *existing.records_mut().await = new_records;
        Ok(())
    }

    /// Where it listens (UDP and TCP).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

fn zone_handler(origin: &str, records: &str) -> Result<ZoneHandler, DnsServerError> {
    let has = |kind: &str| {
        records
            .lines()
            .any(|line| line.split_whitespace().any(|token| token == kind))
    };
    let mut text = format!("$ORIGIN {origin}.\n$TTL 300\n");
    if !has("SOA") {
        text.push_str(&format!(
            "@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n"
        ));
    }
    if !has("NS") {
        text.push_str(&format!("@ IN NS ns1.{origin}.\n"));
    }
    text.push_str(records);
    text.push('\n');
    let zone_error = |reason: String| DnsServerError::Zone {
        origin: origin.to_owned(),
        reason,
    };
    let (name, records) = Parser::new(text, None, None)
        .parse()
        .map_err(|e| zone_error(e.to_string()))?;
    InMemoryZoneHandler::<TokioRuntimeProvider>::new(
        name,
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
    )
    .map_err(zone_error)
}

/// A UDP socket and a TCP listener on the same loopback port. The OS picks a free TCP port
/// (the scarcer kind while tests open many client connections); UDP then takes the same
/// number, and a clash, rare but possible, is retried on another port.
async fn bind_pair() -> std::io::Result<(tokio::net::UdpSocket, tokio::net::TcpListener, SocketAddr)>
{
    const ATTEMPTS: usize = 64;
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = tcp.local_addr()?;
        match tokio::net::UdpSocket::bind(address).await {
            Ok(udp) => return Ok((udp, tcp, address)),
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free port pair")))
}
