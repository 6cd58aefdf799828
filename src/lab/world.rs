//! A simulated world: an authoritative DNS server and simulated servers on loopback, reached
//! through a connector that maps the addresses DNS hands out to the servers' real sockets.

use super::dns_server::{DnsServer, DnsServerError};
use super::mail::{self, MailBehaviour};
use super::pki::{PkiError, ServerIdentity, TestCa};
use super::site::{self, Behaviour};
use crate::net::connect::Connector;
use crate::net::dns::{Dns, DnsProtocol, DnsSetupError};
use crate::net::tls::TlsTrust;
use crate::probe::Prober;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The world could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// Certificates.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// DNS server.
    #[error(transparent)]
    Dns(#[from] DnsServerError),
    /// Resolver for the world.
    #[error(transparent)]
    Resolver(#[from] DnsSetupError),
    /// A listener.
    #[error("lab listener: {0}")]
    Io(#[from] io::Error),
    /// A malformed address in the world's description.
    #[error("lab address {0:?} is not an IP address")]
    Address(String),
}

/// Where a simulated address leads.
#[derive(Clone, Copy, Debug)]
enum Route {
    /// To this loopback listener.
    Listener(SocketAddr),
    /// Nowhere: packets are dropped, connecting never finishes.
    Blackhole,
}

/// Describes a world before it starts.
pub struct WorldBuilder {
    ca: TestCa,
    zones: BTreeMap<String, String>,
    servers: Vec<(SocketAddr, Option<ServerIdentity>, Behaviour)>,
    mail_servers: Vec<(SocketAddr, ServerIdentity, MailBehaviour)>,
    blackholes: Vec<SocketAddr>,
    errors: Vec<String>,
}

impl WorldBuilder {
    /// An empty world with a fresh test CA.
    pub fn new() -> Result<Self, WorldError> {
        Ok(Self {
            ca: TestCa::new("Lab Root CA")?,
            zones: BTreeMap::new(),
            servers: Vec::new(),
            mail_servers: Vec::new(),
            blackholes: Vec::new(),
            errors: Vec::new(),
        })
    }

    /// The world's CA, to issue certificates.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// Adds zone-file records (relative to `origin`) to the zone `origin`, creating it.
    pub fn zone(&mut self, origin: &str, records: &str) -> &mut Self {
        let zone = self.zones.entry(origin.to_owned()).or_default();
        zone.push_str(records);
        zone.push('\n');
        self
    }

    /// A TLS server on `ip:443`.
    pub fn https(&mut self, ip: &str, identity: ServerIdentity, behaviour: Behaviour) -> &mut Self {
        self.server(ip, 443, Some(identity), behaviour)
    }

    /// A plain HTTP server on `ip:80`.
    pub fn http(&mut self, ip: &str, behaviour: Behaviour) -> &mut Self {
        self.server(ip, 80, None, behaviour)
    }

    /// A simulated IMAP, POP3 or SMTP server on `ip:port`.
    pub fn mail(
        &mut self,
        ip: &str,
        port: u16,
        identity: ServerIdentity,
        behaviour: MailBehaviour,
    ) -> &mut Self {
        match ip.parse::<IpAddr>() {
            Ok(ip) => self
                .mail_servers
                .push((SocketAddr::new(ip, port), identity, behaviour)),
            Err(_) => self.errors.push(ip.to_owned()),
        }
        self
    }

    /// Connections to `ip:port` never complete (a firewall dropping packets).
    pub fn blackhole(&mut self, ip: &str, port: u16) -> &mut Self {
        match ip.parse::<IpAddr>() {
            Ok(ip) => self.blackholes.push(SocketAddr::new(ip, port)),
            Err(_) => self.errors.push(ip.to_owned()),
        }
        self
    }

    fn server(
        &mut self,
        ip: &str,
        port: u16,
        identity: Option<ServerIdentity>,
        behaviour: Behaviour,
    ) -> &mut Self {
        match ip.parse::<IpAddr>() {
            Ok(ip) => self
                .servers
                .push((SocketAddr::new(ip, port), identity, behaviour)),
            Err(_) => self.errors.push(ip.to_owned()),
        }
        self
    }

    /// Starts the DNS server and every simulated server.
    pub async fn start(self) -> Result<World, WorldError> {
        if let Some(bad) = self.errors.into_iter().next() {
            return Err(WorldError::Address(bad));
        }
        let zones: Vec<(String, String)> = self.zones.into_iter().collect();
        let dns = DnsServer::start(&zones).await?;
        let (shutdown, stop) = watch::channel(false);
        let mut routes = HashMap::new();
        let mut tasks = Vec::new();
        for (address, identity, behaviour) in self.servers {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            routes.insert(address, Route::Listener(listener.local_addr()?));
            tasks.push(tokio::spawn(site::serve(
                listener,
                identity,
                behaviour,
                stop.clone(),
            )));
        }
        for (address, identity, behaviour) in self.mail_servers {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            routes.insert(address, Route::Listener(listener.local_addr()?));
            tasks.push(tokio::spawn(mail::serve(
                listener,
                identity,
                behaviour,
                stop.clone(),
            )));
        }
        for address in self.blackholes {
            routes.insert(address, Route::Blackhole);
        }
        Ok(World {
            ca_pem: self.ca.pem().to_owned(),
            ca_der: self.ca.der().clone(),
            dns,
            connector: LabConnector {
                routes: Arc::new(routes),
            },
            shutdown,
            tasks,
        })
    }
}

/// A running world. Dropping it stops every server.
pub struct World {
    ca_pem: String,
    ca_der: rustls_pki_types::CertificateDer<'static>,
    dns: DnsServer,
    connector: LabConnector,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl World {
    /// The DNS server's address.
    pub fn nameserver(&self) -> SocketAddr {
        self.dns.address()
    }

    /// Replaces every record of the zone `origin`, as a change of DNS provider would.
    pub async fn replace_zone(&self, origin: &str, records: &str) -> Result<(), WorldError> {
        Ok(self.dns.replace_zone(origin, records).await?)
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A connector into this world.
    pub fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(self.connector.clone())
    }

    /// Trust exactly the world's CA.
    pub fn trust(&self) -> TlsTrust {
        let mut roots = rustls::RootCertStore::empty();
        // The CA was generated by rcgen a moment ago; adding it cannot fail for a valid DER.
        let _ = roots.add(self.ca_der.clone());
        TlsTrust::from_roots(roots)
    }

    /// A prober whose DNS, trust and sockets all lead into this world.
    pub fn prober(&self) -> Result<Prober, WorldError> {
        let dns = Dns::new(
            &[self.nameserver()],
            DnsProtocol::Udp,
            Duration::from_secs(2),
        )?;
        Ok(Prober::new(dns, self.trust(), self.connector()))
    }

    /// Stops every server and waits for them.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Maps the world's addresses to loopback listeners; everything else is refused, so a probe in
/// the lab never leaves the machine.
#[derive(Clone)]
pub struct LabConnector {
    routes: Arc<HashMap<SocketAddr, Route>>,
}

impl Connector for LabConnector {
    fn connect(
        &self,
        address: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send + '_>> {
        let route = self.routes.get(&address).copied();
        Box::pin(async move {
            match route {
                Some(Route::Listener(local)) => TcpStream::connect(local).await,
                Some(Route::Blackhole) => std::future::pending().await,
                None => Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("nothing listens on {address} in the lab"),
                )),
            }
        })
    }
}
