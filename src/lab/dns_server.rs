//! An authoritative DNS server (hickory-server) on loopback, serving zones held in memory.

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::LowerName;
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
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

/// A running DNS server; dropping it stops it.
pub struct DnsServer {
    address: SocketAddr,
    _server: Server<Catalog>,
}

impl DnsServer {
    /// Serves `zones` (origin, records in zone-file syntax relative to the origin) on
    /// 127.0.0.1, UDP and TCP, on a random port.
    pub async fn start(zones: &[(String, String)]) -> Result<Self, DnsServerError> {
        let mut catalog = Catalog::new();
        for (origin, records) in zones {
            let text = format!(
                "$ORIGIN {origin}.\n$TTL 300\n@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n\
                 @ IN NS ns1.{origin}.\n{records}\n"
            );
            let zone_error = |reason: String| DnsServerError::Zone {
                origin: origin.clone(),
                reason,
            };
            let (name, records) = Parser::new(text, None, None)
                .parse()
                .map_err(|e| zone_error(e.to_string()))?;
            let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
                name.clone(),
                records,
                ZoneType::Primary,
                AxfrPolicy::Deny,
            )
            .map_err(zone_error)?;
            catalog.upsert(LowerName::new(&name), vec![Arc::new(handler)]);
        }
        let (udp, tcp, address) = bind_pair().await?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        Ok(Self {
            address,
            _server: server,
        })
    }

    /// Where it listens (UDP and TCP).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
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
