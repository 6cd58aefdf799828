//! DNS as a stub resolver asks it: each question goes to the configured servers in turn (UDP,
//! TCP when the answer is truncated), with NXDOMAIN, NODATA, SERVFAIL and timeouts kept apart.
//! Nothing is cached: every probe sees the live DNS.
//!
//! Answers are decoded by hickory-proto; the queries (always one question with an EDNS OPT
//! record) are written here, byte for byte as hickory writes them, and the exchange is this
//! module's own. A probe asks about seven questions, and a general-purpose resolver's machinery
//! (server pools, retry streams, background tasks per query) cost a quarter of a probe's CPU.
//!
//! The questions of one lookup (A and AAAA of a host; NS and SOA of a domain) go out from one
//! UDP socket per server (a `DnsSession`), as glibc's resolver sends A and AAAA from one
//! socket: a fresh random source port per lookup, a random ID per question, and the socket's
//! setup and teardown paid once for both. Not one socket for a whole probe: a server flooding
//! every answer with wrong-ID copies (the hostile-world suite sends 200 per answer) would fill
//! one receive buffer with seven questions' copies and push real answers out; two questions'
//! copies fit in the buffer the socket asks for.

use crate::model::facts::{
    CnameHop, Delegation, DnsAnswer, HostLookup, MAX_ADDRESSES_PER_HOST, MAX_NAMESERVERS, Soa,
    SrvLookup, SrvRecord,
};
use crate::protocol::srv;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::collections::{HashMap, HashSet};
use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest, Ready};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

/// Most CNAME hops recorded for one lookup.
const MAX_CNAME_HOPS: usize = 16;
/// Most queries that follow a CNAME chain the server did not finish (as resolvers do).
const MAX_CNAME_QUERIES: usize = 8;
/// The EDNS payload size offered (DNS Flag Day 2020): larger answers come truncated, then by TCP.
const UDP_PAYLOAD: u16 = 1232;
/// Room for any UDP answer a server may send despite the offer; longer datagrams are cut and
/// fail to decode.
const UDP_BUFFER: usize = 4096;
/// The system resolver's configuration, and the server used when it names none (as glibc does).
const RESOLV_CONF: &str = "/etc/resolv.conf";
const DEFAULT_NAMESERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53);
/// glibc reads at most three `nameserver` lines.
const MAX_SYSTEM_NAMESERVERS: usize = 3;
/// Datagrams kept for a question that has not read them yet (a right-ID spoof must not push
/// out the real answer; a flood of them is dropped).
const INBOX_CAP: usize = 8;
/// Datagrams one question reads in a row before it lets other tasks run.
const READS_PER_POLL: usize = 64;
/// The receive buffer a lookup's socket asks for (the kernel grants at most `net.core.rmem_max`,
/// 208 KiB on a stock kernel, and doubles it: room for about 500 small datagrams, where the
/// default holds about 250).
const RECEIVE_BUFFER: libc::c_int = 1 << 20;

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
#[error("cannot set up the DNS resolver: cannot read {}: {source}", path.display())]
pub struct DnsSetupError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// A non-caching stub resolver.
#[derive(Clone)]
pub struct Dns {
    servers: Arc<[SocketAddr]>,
    protocol: DnsProtocol,
    query_timeout: Duration,
    description: Arc<str>,
}

/// Why one exchange with one server produced no usable answer.
enum Failure {
    Timeout,
    Io(io::Error),
    Malformed(String),
}

impl Dns {
    /// A resolver for the given servers, or the system's (`/etc/resolv.conf`) when empty.
    pub fn new(
        nameservers: &[SocketAddr],
        protocol: DnsProtocol,
        query_timeout: Duration,
    ) -> Result<Self, DnsSetupError> {
        let (servers, description) = if nameservers.is_empty() {
            let path = Path::new(RESOLV_CONF);
            let text = std::fs::read_to_string(path).map_err(|source| DnsSetupError {
                path: path.to_owned(),
                source,
            })?;
            (
                system_nameservers(&text),
                format!("the system resolver ({RESOLV_CONF})"),
            )
        } else {
            let servers: Vec<String> = nameservers.iter().map(ToString::to_string).collect();
            (nameservers.to_vec(), servers.join(", "))
        };
        Ok(Self {
            servers: servers.into(),
            protocol,
            query_timeout,
            description: description.into(),
        })
    }

    /// Which servers it asks, for traces.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// A session for the questions of one lookup: they share one UDP socket per server.
    fn session(&self) -> DnsSession {
        DnsSession {
            ports: Arc::new(Mutex::new(vec![None; self.servers.len()])),
            dns: self.clone(),
        }
    }

    /// Looks up A and AAAA of `host` in a session of its own.
    pub async fn lookup_host(&self, host: &str, budget: Duration) -> HostLookup {
        self.session().lookup_host(host, budget).await
    }

    /// Looks up the SRV records of `name` in a session of its own.
    pub async fn lookup_srv(&self, name: &str, budget: Duration) -> SrvLookup {
        self.session().lookup_srv(name, budget).await
    }

    /// Looks up the NS set and the SOA of `domain` in a session of its own.
    pub async fn lookup_delegation(&self, domain: &str, budget: Duration) -> Delegation {
        self.session().lookup_delegation(domain, budget).await
    }
}

/// The questions of one lookup: the resolver's settings and, per server, the UDP socket they
/// share (opened at the first question to that server, closed with the last clone).
#[derive(Clone)]
struct DnsSession {
    dns: Dns,
    ports: Arc<Mutex<Vec<Option<Arc<Port>>>>>,
}

impl DnsSession {
    /// Looks up A and AAAA of `host` (concurrently), recording the CNAME chain.
    async fn lookup_host(&self, host: &str, budget: Duration) -> HostLookup {
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
            shared: false,
        }
    }

    /// Looks up the SRV records of `name`.
    async fn lookup_srv(&self, name: &str, budget: Duration) -> SrvLookup {
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
    async fn lookup_delegation(&self, domain: &str, budget: Duration) -> Delegation {
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

    /// One question within `budget`: the answer and the records of the answer section (CNAMEs
    /// included). A chain the server left unfinished is followed, as resolvers do.
    async fn query(
        &self,
        name: &str,
        record_type: RecordType,
        budget: Duration,
    ) -> (DnsAnswer, Vec<Record>) {
        if budget.is_zero() {
            // No time left: the query is not sent at all.
            return (DnsAnswer::Timeout, Vec::new());
        }
        // Each server gets the query timeout; the whole question, retries included, at most
        // two of them.
        let limit = budget.min(self.dns.query_timeout * 2 + Duration::from_millis(200));
        let deadline = Instant::now() + limit;
        let Ok(mut asked) = Name::from_ascii(name) else {
            return (
                DnsAnswer::Error {
                    detail: format!("not a DNS name: {name}"),
                },
                Vec::new(),
            );
        };
        let mut records = Vec::new();
        // At most MAX_CNAME_QUERIES names: a list is cheaper than hashing them.
        let mut visited: Vec<Name> = Vec::new();
        for _ in 0..MAX_CNAME_QUERIES {
            visited.push(asked.clone());
            let (answer, mut got) = self.ask(&asked, record_type, deadline).await;
            records.append(&mut got);
            let count = records
                .iter()
                .filter(|r| r.record_type() == record_type)
                .count();
            let answer = match answer {
                DnsAnswer::NoData if count > 0 => DnsAnswer::Records { count },
                DnsAnswer::Records { .. } => DnsAnswer::Records { count },
                other => other,
            };
            if answer != DnsAnswer::NoData || record_type == RecordType::CNAME {
                return (answer, records);
            }
            match chain_end(&asked, &records) {
                Some(end) if !visited.contains(&end) => asked = end,
                _ => return (answer, records),
            }
        }
        (DnsAnswer::NoData, records)
    }

    /// Asks the servers in turn until one gives a final answer (records, NODATA, NXDOMAIN).
    async fn ask(
        &self,
        name: &Name,
        record_type: RecordType,
        deadline: Instant,
    ) -> (DnsAnswer, Vec<Record>) {
        let mut last = DnsAnswer::Timeout;
        for index in 0..self.dns.servers.len() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let until = deadline.min(now + self.dns.query_timeout);
            let asked = Asked { name, record_type };
            let answer = match tokio::time::timeout_at(until, self.exchange(index, asked))
                .await
                .unwrap_or(Err(Failure::Timeout))
            {
                Ok(mut reply) => match reply.metadata.response_code {
                    ResponseCode::NoError => {
                        let answers = std::mem::take(&mut reply.answers);
                        let count = answers
                            .iter()
                            .filter(|r| r.record_type() == record_type)
                            .count();
                        let answer = if count == 0 {
                            DnsAnswer::NoData
                        } else {
                            DnsAnswer::Records { count }
                        };
                        return (answer, answers);
                    }
                    ResponseCode::NXDomain => {
                        return (DnsAnswer::NxDomain, std::mem::take(&mut reply.answers));
                    }
                    ResponseCode::ServFail => DnsAnswer::ServFail,
                    ResponseCode::Refused => DnsAnswer::Refused,
                    other => DnsAnswer::Error {
                        detail: format!("response code {other}"),
                    },
                },
                Err(Failure::Timeout) => DnsAnswer::Timeout,
                Err(Failure::Io(error)) if super::connect::is_local_resource_error(&error) => {
                    DnsAnswer::LocalError {
                        detail: error.to_string(),
                    }
                }
                Err(Failure::Io(error)) => DnsAnswer::Unreachable {
                    detail: error.to_string(),
                },
                Err(Failure::Malformed(detail)) => DnsAnswer::Error { detail },
            };
            last = answer;
        }
        (last, Vec::new())
    }

    /// One request to the server at `index`: UDP first (unless TCP is configured), TCP when
    /// the answer is truncated. The request gets its ID here, unique on the session's socket.
    async fn exchange(&self, index: usize, asked: Asked<'_>) -> Result<Message, Failure> {
        let server = *self
            .dns
            .servers
            .get(index)
            .ok_or_else(|| Failure::Malformed("no such name server".into()))?;
        if self.dns.protocol == DnsProtocol::Tcp {
            let id = rand::random();
            let bytes = asked.encode(id)?;
            return exchange_tcp(server, id, asked, &bytes).await;
        }
        let port = self.port(index, server).map_err(Failure::Io)?;
        let question = port.register();
        let bytes = asked.encode(question.id)?;
        port.send(question.id, &bytes).await.map_err(Failure::Io)?;
        let reply = loop {
            let datagram = poll_fn(|cx| port.poll_datagram(cx, question.id))
                .await
                .map_err(Failure::Io)?;
            if let Some(reply) = answer_to(question.id, asked, &datagram)? {
                break reply;
            }
        };
        let id = question.id;
        drop(question);
        if !reply.metadata.truncation {
            return Ok(reply);
        }
        exchange_tcp(server, id, asked, &bytes).await
    }

    /// The session's socket to the server at `index`, opened now when this is the first
    /// question there. A failure to open is not kept: the next question tries again.
    fn port(&self, index: usize, server: SocketAddr) -> io::Result<Arc<Port>> {
        let mut ports = self.ports.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Some(port)) = ports.get(index) {
            return Ok(port.clone());
        }
        let port = Arc::new(Port::open(server)?);
        if let Some(slot) = ports.get_mut(index) {
            *slot = Some(port.clone());
        }
        Ok(port)
    }
}

/// One question: a name and a record type, in class IN.
#[derive(Clone, Copy)]
struct Asked<'a> {
    name: &'a Name,
    record_type: RecordType,
}

impl Asked<'_> {
    /// The query message with ID `id`: recursion desired, one question, and an EDNS OPT record
    /// offering [`UDP_PAYLOAD`] bytes (version 0, no flags, no options). Written here rather than
    /// by hickory's general encoder, whose name-compression table and record conversions cost
    /// more than the rest of sending the query; the test `queries_encode_as_hickory_encodes`
    /// holds it to hickory's bytes.
    fn encode(self, id: u16) -> Result<Vec<u8>, Failure> {
        // Header, a name of at most 255 bytes, type and class, the OPT record.
        let mut bytes = Vec::with_capacity(12 + 255 + 4 + 11);
        bytes.extend_from_slice(&id.to_be_bytes());
        // QR 0 (query), opcode 0, RD 1; RA, Z, AD, CD and RCODE 0.
        bytes.extend_from_slice(&[0x01, 0x00]);
        // One question, no answers or authority records, one additional record (OPT).
        bytes.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
        for label in self.name.iter() {
            // A `Name` holds labels of 1 to 63 bytes, so the length is one byte.
            let length = u8::try_from(label.len())
                .ok()
                .filter(|length| (1..=63).contains(length))
                .ok_or_else(|| Failure::Malformed("cannot encode the query name".into()))?;
            bytes.push(length);
            bytes.extend_from_slice(label);
        }
        bytes.push(0);
        bytes.extend_from_slice(&u16::from(self.record_type).to_be_bytes());
        bytes.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        // OPT: root name, type 41, class = UDP payload, TTL 0 (extended RCODE, version, flags),
        // no data.
        bytes.push(0);
        bytes.extend_from_slice(&u16::from(RecordType::OPT).to_be_bytes());
        bytes.extend_from_slice(&UDP_PAYLOAD.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        Ok(bytes)
    }
}

/// A connected UDP socket several questions share. Each question waits for the datagrams of
/// its own ID; whichever question reads the socket hands a datagram to the one it belongs to
/// and wakes it, and drops datagrams of no waiting question (strays, late answers).
struct Port {
    socket: Arc<UdpSocket>,
    waiting: Mutex<HashMap<u16, Waiting>>,
    /// The wait for the socket to become readable, polled by whichever question reads.
    readiness: Mutex<Option<ReadinessWait>>,
}

type ReadinessWait = Pin<Box<dyn Future<Output = io::Result<Ready>> + Send>>;

/// What a waiting question has been handed, and how to wake it.
#[derive(Default)]
struct Waiting {
    inbox: Vec<Delivered>,
    waker: Option<Waker>,
}

enum Delivered {
    Datagram(Vec<u8>),
    /// The socket's error: an ICMP port unreachable is reported once, to one reader, and every
    /// question waiting on the socket fails with it.
    Error(io::ErrorKind, Option<i32>),
}

impl Delivered {
    fn into_result(self) -> io::Result<Vec<u8>> {
        match self {
            Self::Datagram(bytes) => Ok(bytes),
            Self::Error(_, Some(code)) => Err(io::Error::from_raw_os_error(code)),
            Self::Error(kind, None) => Err(io::Error::from(kind)),
        }
    }
}

/// A question registered on a port. Dropping it (answered, timed out, cancelled) removes it
/// and wakes the others: tokio wakes only the latest reader of a socket, and that may have
/// been this one, so another must take over reading.
struct Question<'a> {
    port: &'a Port,
    id: u16,
}

impl Drop for Question<'_> {
    fn drop(&mut self) {
        let mut waiting = self.port.lock();
        waiting.remove(&self.id);
        for other in waiting.values_mut() {
            if let Some(waker) = other.waker.take() {
                waker.wake();
            }
        }
    }
}

impl Port {
    /// A socket on a random local port, connected to `server`: the kernel drops datagrams
    /// from other addresses and reports ICMP errors.
    fn open(server: SocketAddr) -> io::Result<Self> {
        let socket = connected_udp(server)?;
        Ok(Self {
            socket: Arc::new(UdpSocket::from_std(socket)?),
            waiting: Mutex::new(HashMap::new()),
            readiness: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u16, Waiting>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new question, with a random ID no waiting question has.
    fn register(&self) -> Question<'_> {
        let mut waiting = self.lock();
        let mut id: u16 = rand::random();
        // A few dozen questions wait at once at most: a free ID comes within a few draws.
        while waiting.contains_key(&id) {
            id = rand::random();
        }
        waiting.insert(id, Waiting::default());
        Question { port: self, id }
    }

    /// The next datagram for question `id`: one another reader handed over, or one read from
    /// the socket now.
    fn poll_datagram(&self, cx: &mut Context<'_>, id: u16) -> Poll<io::Result<Vec<u8>>> {
        // Allocated at the first read, never zeroed: most polls find the answer handed over or
        // nothing to read, and clearing 4 KiB on each was a percent of a check set's work.
        let mut buffer: Vec<u8> = Vec::new();
        for _ in 0..READS_PER_POLL {
            {
                let mut waiting = self.lock();
                let Some(mine) = waiting.get_mut(&id) else {
                    return Poll::Ready(Err(io::Error::other("the question is not registered")));
                };
                if !mine.inbox.is_empty() {
                    return Poll::Ready(mine.inbox.remove(0).into_result());
                }
                match &mut mine.waker {
                    Some(waker) => waker.clone_from(cx.waker()),
                    slot @ None => *slot = Some(cx.waker().clone()),
                }
            }
            // No system call unless the socket was reported readable.
            buffer.clear();
            buffer.reserve_exact(UDP_BUFFER);
            match self.socket.try_recv_buf(&mut buffer) {
                Ok(_) => {
                    // The ID from the raw bytes: a flood of stray packets costs no decoding.
                    match datagram_id(&buffer) {
                        Some(owner) if owner == id => return Poll::Ready(Ok(buffer)),
                        Some(owner) => self.hand_over(owner, &buffer),
                        None => {}
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    match self.poll_readiness(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(error)) => {
                            self.fail_others(id, &error);
                            return Poll::Ready(Err(error));
                        }
                    }
                }
                Err(error) => {
                    self.fail_others(id, &error);
                    return Poll::Ready(Err(error));
                }
            }
        }
        // A flood of datagrams for others: let other tasks run, then read on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Waits until the socket is readable or has an error (an ICMP answer sets only the error
    /// readiness, which a wait for readability alone would miss); an error is taken and
    /// returned. Only the latest caller's waker is kept, as for tokio's own `poll_recv`.
    fn poll_readiness(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut slot = self
            .readiness
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let wait = slot.get_or_insert_with(|| {
            let socket = self.socket.clone();
            Box::pin(async move { socket.ready(Interest::READABLE | Interest::ERROR).await })
        });
        let ready = match wait.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(ready) => ready,
        };
        *slot = None;
        drop(slot);
        if !ready?.is_error() {
            return Poll::Ready(Ok(()));
        }
        let error = self.socket.take_error()?;
        // The error is taken; the readiness tokio keeps for it is cleared by a "would block".
        let _ = self.socket.try_io(Interest::ERROR, || {
            Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
        });
        Poll::Ready(error.map_or(Ok(()), Err))
    }

    /// Gives `datagram` to the waiting question `owner`; dropped when there is none.
    fn hand_over(&self, owner: u16, datagram: &[u8]) {
        let mut waiting = self.lock();
        if let Some(entry) = waiting.get_mut(&owner)
            && entry.inbox.len() < INBOX_CAP
        {
            entry.inbox.push(Delivered::Datagram(datagram.to_vec()));
            if let Some(waker) = entry.waker.take() {
                waker.wake();
            }
        }
    }

    /// Sends question `id`. The socket's pending error (an ICMP answer to an earlier
    /// question) may come back here instead of from a read: it fails the others too.
    async fn send(&self, id: u16, bytes: &[u8]) -> io::Result<()> {
        match self.socket.send(bytes).await {
            Ok(_) => Ok(()),
            Err(error) => {
                self.fail_others(id, &error);
                Err(error)
            }
        }
    }

    /// Every question but `id` fails with the socket's `error`.
    fn fail_others(&self, id: u16, error: &io::Error) {
        let mut waiting = self.lock();
        for (other, entry) in waiting.iter_mut() {
            if *other != id && entry.inbox.len() < INBOX_CAP {
                entry
                    .inbox
                    .push(Delivered::Error(error.kind(), error.raw_os_error()));
                if let Some(waker) = entry.waker.take() {
                    waker.wake();
                }
            }
        }
    }
}

/// A non-blocking UDP socket connected to `server`. Connecting an unbound socket binds it to a
/// random local port, as glibc's resolver relies on; the socket is created non-blocking rather
/// than bound and switched by two more system calls, a fifth of what a lookup's socket cost.
fn connected_udp(server: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use std::os::fd::FromRawFd;
    let family = match server {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket() reads no memory of ours; it returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it; the socket closes it on drop.
    let socket = unsafe { std::net::UdpSocket::from_raw_fd(fd) };
    set_receive_buffer(&socket, RECEIVE_BUFFER);
    socket.connect(server)?;
    Ok(socket)
}

/// Asks for a larger receive buffer; a refusal leaves the default, which still works.
fn set_receive_buffer(socket: &std::net::UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int on the stack, for a
    // descriptor the socket owns for the whole call.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            std::ptr::from_ref(&bytes).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

fn datagram_id(datagram: &[u8]) -> Option<u16> {
    match datagram {
        [high, low, ..] => Some(u16::from_be_bytes([*high, *low])),
        _ => None,
    }
}

/// TCP with the two-byte length prefix; one request, one answer.
async fn exchange_tcp(
    server: SocketAddr,
    id: u16,
    asked: Asked<'_>,
    bytes: &[u8],
) -> Result<Message, Failure> {
    let length = u16::try_from(bytes.len())
        .map_err(|_| Failure::Malformed("query longer than 65,535 bytes".into()))?;
    let mut stream = TcpStream::connect(server).await.map_err(Failure::Io)?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.map_err(Failure::Io)?;
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).await.map_err(Failure::Io)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut answer).await.map_err(Failure::Io)?;
    answer_to(id, asked, &answer)?
        .ok_or_else(|| Failure::Malformed("the TCP answer is for another query".into()))
}

/// The reply when `datagram` answers `request`; `None` for anything else (it is dropped).
/// A reply with the right ID that does not decode is a malformed answer.
fn answer_to(id: u16, asked: Asked<'_>, datagram: &[u8]) -> Result<Option<Message>, Failure> {
    if datagram_id(datagram) != Some(id) {
        return Ok(None);
    }
    let reply = Message::from_vec(datagram)
        .map_err(|e| Failure::Malformed(format!("malformed answer: {e}")))?;
    // Names compare without regard to case (hickory's `Name` equality).
    let same_question = match reply.queries.first() {
        Some(got) => {
            got.name() == asked.name
                && got.query_type() == asked.record_type
                && got.query_class() == DNSClass::IN
        }
        // Some servers leave the question out of error answers.
        None => reply.metadata.response_code != ResponseCode::NoError,
    };
    if reply.metadata.message_type != MessageType::Response || !same_question {
        return Ok(None);
    }
    Ok(Some(reply))
}

/// Where the CNAME chain that starts at `name` ends in `records`, when it leads elsewhere.
fn chain_end(name: &Name, records: &[Record]) -> Option<Name> {
    let mut current = name.clone();
    for _ in 0..MAX_CNAME_HOPS {
        let next = records.iter().find_map(|record| match &record.data {
            RData::CNAME(cname) if record.name == current => Some(cname.0.clone()),
            _ => None,
        });
        match next {
            Some(next) if next != current => current = next,
            _ => break,
        }
    }
    (current != *name).then_some(current)
}

/// The `nameserver` lines of a resolv.conf (at most three, port 53), or 127.0.0.1 when there
/// are none, as glibc reads it.
fn system_nameservers(text: &str) -> Vec<SocketAddr> {
    let mut servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // An IPv6 zone ("fe80::1%eth0") is dropped: the address alone is tried.
            let address = words.next()?.split('%').next()?;
            address.parse::<IpAddr>().ok()
        })
        .take(MAX_SYSTEM_NAMESERVERS)
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if servers.is_empty() {
        servers.push(DEFAULT_NAMESERVER);
    }
    servers
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
    use hickory_proto::op::Query;
    use hickory_proto::rr::rdata::{A, CNAME};
    use std::str::FromStr;

    type TcpAnswer = Box<dyn Fn(&Message) -> Vec<u8> + Send + Sync>;

    #[tokio::test]
    async fn each_lookups_socket_gets_a_port_of_its_own() {
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let ports: HashSet<u16> = (0..8)
            .map(|_| {
                let port = Port::open(server).unwrap();
                assert_eq!(port.socket.peer_addr().unwrap(), server);
                port.socket.local_addr().unwrap().port()
            })
            .collect();
        assert!(!ports.contains(&0));
        assert!(ports.len() > 1, "{ports:?}");
    }

    /// A UDP name server on loopback that answers each query with the datagrams `answer`
    /// makes of it; the same port serves TCP with `tcp_answer` when given.
    async fn server(
        answer: impl Fn(&Message) -> Vec<Vec<u8>> + Send + Sync + 'static,
        tcp_answer: Option<TcpAnswer>,
    ) -> (SocketAddr, Vec<tokio::task::JoinHandle<()>>) {
        let (udp, listener) = bind_pair().await;
        let address = udp.local_addr().unwrap();
        let mut tasks = vec![tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            while let Ok((length, from)) = udp.recv_from(&mut buffer).await {
                let request = Message::from_vec(&buffer[..length]).unwrap();
                for datagram in answer(&request) {
                    udp.send_to(&datagram, from).await.unwrap();
                }
            }
        })];
        if let Some(tcp_answer) = tcp_answer {
            tasks.push(tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let mut prefix = [0u8; 2];
                    stream.read_exact(&mut prefix).await.unwrap();
                    let mut request = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                    stream.read_exact(&mut request).await.unwrap();
                    let reply = tcp_answer(&Message::from_vec(&request).unwrap());
                    let length = u16::try_from(reply.len()).unwrap().to_be_bytes();
                    stream.write_all(&length).await.unwrap();
                    stream.write_all(&reply).await.unwrap();
                }
            }));
        }
        (address, tasks)
    }

    /// A TCP listener on an ephemeral port and a UDP socket on the same number. The TCP port
    /// is taken first; the UDP number may be in use by another socket, so a clash means
    /// another try (bounded).
    async fn bind_pair() -> (UdpSocket, tokio::net::TcpListener) {
        for _ in 0..64 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            if let Ok(udp) = UdpSocket::bind(address).await {
                return (udp, listener);
            }
        }
        panic!("no port free for both UDP and TCP in 64 tries");
    }

    fn reply(request: &Message, records: Vec<Record>) -> Message {
        let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
        reply.add_queries(request.queries.clone());
        reply.add_answers(records);
        reply
    }

    fn a(name: &str, last: u8) -> Record {
        Record::from_rdata(
            Name::from_str(name).unwrap(),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
        )
    }

    fn cname(name: &str, target: &str) -> Record {
        Record::from_rdata(
            Name::from_str(name).unwrap(),
            60,
            RData::CNAME(CNAME(Name::from_str(target).unwrap())),
        )
    }

    fn dns(server: SocketAddr) -> Dns {
        Dns::new(&[server], DnsProtocol::Udp, Duration::from_millis(500)).unwrap()
    }

    const BUDGET: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn stray_datagrams_are_dropped_and_the_answer_is_taken() {
        let (address, _tasks) = server(
            |request| {
                let mut datagrams = Vec::new();
                for i in 1..=50u16 {
                    let mut stray = reply(request, vec![a("x.test.", 9)]);
                    stray.metadata.id = request.metadata.id.wrapping_add(i);
                    datagrams.push(stray.to_vec().unwrap());
                }
                let mut other = reply(request, vec![a("other.test.", 8)]);
                other.queries = vec![Query::query(
                    Name::from_str("other.test.").unwrap(),
                    RecordType::A,
                )];
                datagrams.push(other.to_vec().unwrap());
                datagrams.push(vec![0]);
                datagrams.push(reply(request, vec![a("x.test.", 1)]).to_vec().unwrap());
                datagrams
            },
            None,
        )
        .await;
        let (answer, records) = dns(address)
            .session()
            .query("x.test.", RecordType::A, BUDGET)
            .await;
        assert_eq!(answer, DnsAnswer::Records { count: 1 });
        assert_eq!(records, vec![a("x.test.", 1)]);
    }

    #[tokio::test]
    async fn truncated_answers_are_asked_again_over_tcp() {
        let (address, _tasks) = server(
            |request| {
                let mut truncated = reply(request, Vec::new());
                truncated.metadata.truncation = true;
                vec![truncated.to_vec().unwrap()]
            },
            Some(Box::new(|request| {
                let many = (1..=200).map(|i| a("big.test.", i)).collect();
                reply(request, many).to_vec().unwrap()
            })),
        )
        .await;
        let lookup = dns(address).lookup_host("big.test", BUDGET).await;
        assert_eq!(lookup.a, DnsAnswer::Records { count: 200 });
        assert_eq!(lookup.addresses_published, 200);
        assert_eq!(lookup.addresses.len(), MAX_ADDRESSES_PER_HOST);
    }

    #[tokio::test]
    async fn an_unfinished_cname_chain_is_followed_and_a_loop_ends() {
        let (address, _tasks) = server(
            |request| {
                let name = request.queries[0].name().to_ascii();
                let records = match name.as_str() {
                    "start.test." => vec![cname("start.test.", "middle.test.")],
                    "middle.test." => vec![cname("middle.test.", "end.test."), a("end.test.", 7)],
                    "loop1.test." => vec![cname("loop1.test.", "loop2.test.")],
                    "loop2.test." => vec![cname("loop2.test.", "loop1.test.")],
                    _ => Vec::new(),
                };
                vec![reply(request, records).to_vec().unwrap()]
            },
            None,
        )
        .await;
        let dns = dns(address);
        let lookup = dns.lookup_host("start.test", BUDGET).await;
        assert_eq!(lookup.addresses, vec![IpAddr::from([192, 0, 2, 7])]);
        let chain: Vec<_> = lookup
            .cname_chain
            .iter()
            .map(|h| h.target.clone())
            .collect();
        assert_eq!(chain, ["middle.test", "end.test"]);
        let (answer, records) = dns
            .session()
            .query("loop1.test.", RecordType::A, BUDGET)
            .await;
        assert_eq!(answer, DnsAnswer::NoData);
        assert_eq!(records.len(), 2);
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_silence_a_timeout() {
        // No test or suite binds this loopback address: the kernel answers port unreachable.
        let address = SocketAddr::from(([127, 77, 88, 99], 53));
        let (answer, _) = dns(address)
            .session()
            .query("x.test.", RecordType::A, BUDGET)
            .await;
        assert!(
            matches!(answer, DnsAnswer::Unreachable { .. }),
            "{answer:?}"
        );
        // A and AAAA share a socket: the port unreachable fails both, whichever reads it.
        let lookup = dns(address).lookup_host("x.test", BUDGET).await;
        assert!(
            matches!(lookup.a, DnsAnswer::Unreachable { .. }),
            "{lookup:?}"
        );
        assert!(
            matches!(lookup.aaaa, DnsAnswer::Unreachable { .. }),
            "{lookup:?}"
        );
        let (silent, _tasks) = server(|_| Vec::new(), None).await;
        let started = Instant::now();
        let (answer, _) = dns(silent)
            .session()
            .query("x.test.", RecordType::A, BUDGET)
            .await;
        assert_eq!(answer, DnsAnswer::Timeout);
        assert!(started.elapsed() < BUDGET);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_questions_of_a_session_share_one_socket_across_tasks() {
        // Answers "soon" at once, "late" after 300 ms, "never" not at all; records the source
        // ports the questions came from.
        let udp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let address = udp.local_addr().unwrap();
        let ports = Arc::new(Mutex::new(HashSet::new()));
        let _server = tokio::spawn({
            let ports = ports.clone();
            async move {
                let mut buffer = vec![0u8; 4096];
                while let Ok((length, from)) = udp.recv_from(&mut buffer).await {
                    ports.lock().unwrap().insert(from.port());
                    let request = Message::from_vec(&buffer[..length]).unwrap();
                    let name = request.queries[0].name().to_ascii();
                    let last = match name.as_str() {
                        "soon.test." => 1,
                        "late.test." => 2,
                        _ => continue,
                    };
                    let answer = reply(&request, vec![a(&name, last)]).to_vec().unwrap();
                    let delay = Duration::from_millis(if last == 2 { 300 } else { 0 });
                    let udp = udp.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        udp.send_to(&answer, from).await.unwrap();
                    });
                }
            }
        });
        let timeout = Duration::from_secs(10);
        let session = Dns::new(&[address], DnsProtocol::Udp, timeout)
            .unwrap()
            .session();
        let ask = |name: &'static str| {
            let session = session.clone();
            tokio::spawn(async move { session.query(name, RecordType::A, timeout).await })
        };
        let started = Instant::now();
        let late = ask("late.test.");
        let never = ask("never.test.");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (answer, records) = session.query("soon.test.", RecordType::A, timeout).await;
        assert_eq!(answer, DnsAnswer::Records { count: 1 });
        assert_eq!(records, vec![a("soon.test.", 1)]);
        // The question that may be the socket's reader goes away: another takes over.
        never.abort();
        let (answer, records) = late.await.unwrap();
        assert_eq!(answer, DnsAnswer::Records { count: 1 });
        assert_eq!(records, vec![a("late.test.", 2)]);
        // Answered when it came (300 ms), not when some other wake-up happened to poll it:
        // without the hand-over it waits for its 10 s timeout.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(ports.lock().unwrap().len(), 1, "one socket for the session");
    }

    #[tokio::test]
    async fn wrong_id_floods_to_the_questions_of_a_probe_leave_their_answers() {
        // As the hostile world's resolver: each answer among 200 copies with the IDs after it,
        // sent from a thread of its own as fast as it can.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 4096];
            while let Ok((length, from)) = udp.recv_from(&mut buffer) {
                let request = Message::from_vec(&buffer[..length]).unwrap();
                let right = reply(&request, vec![a("x.test.", 1)]);
                for k in 1..=200u16 {
                    if k == 101 {
                        let _ = udp.send_to(&right.to_vec().unwrap(), from);
                    }
                    let mut copy = right.clone();
                    copy.metadata.id = request.metadata.id.wrapping_add(k);
                    let _ = udp.send_to(&copy.to_vec().unwrap(), from);
                }
            }
        });
        let dns = dns(address);
        let (one, two, three, delegation) = tokio::join!(
            dns.lookup_host("x.test", BUDGET),
            dns.lookup_host("autodiscover.x.test", BUDGET),
            dns.lookup_srv("_autodiscover._tcp.x.test", BUDGET),
            dns.lookup_delegation("x.test", BUDGET),
        );
        for lookup in [&one, &two] {
            assert_eq!(lookup.a, DnsAnswer::Records { count: 1 }, "{lookup:?}");
            // The server answers an A record to every question: NODATA for AAAA.
            assert_eq!(lookup.aaaa, DnsAnswer::NoData, "{lookup:?}");
        }
        assert_ne!(three.answer, DnsAnswer::Timeout, "{three:?}");
        assert_ne!(delegation.ns_answer, DnsAnswer::Timeout, "{delegation:?}");
        assert_ne!(delegation.soa_answer, DnsAnswer::Timeout, "{delegation:?}");
    }

    #[tokio::test]
    async fn tcp_only_never_asks_over_udp() {
        let (address, _tasks) = server(
            |request| vec![reply(request, vec![a("x.test.", 9)]).to_vec().unwrap()],
            Some(Box::new(|request| {
                reply(request, vec![a("x.test.", 1)]).to_vec().unwrap()
            })),
        )
        .await;
        let dns = Dns::new(&[address], DnsProtocol::Tcp, Duration::from_millis(500)).unwrap();
        let (answer, records) = dns.session().query("x.test.", RecordType::A, BUDGET).await;
        assert_eq!(answer, DnsAnswer::Records { count: 1 });
        assert_eq!(records, vec![a("x.test.", 1)]);
    }

    #[tokio::test]
    async fn a_refusing_server_hands_over_to_the_next_and_nxdomain_is_final() {
        let (refusing, _t1) = server(
            |request| {
                let mut refused = reply(request, Vec::new());
                refused.metadata.response_code = ResponseCode::Refused;
                vec![refused.to_vec().unwrap()]
            },
            None,
        )
        .await;
        let (answering, _t2) = server(
            |request| {
                let mut answer = reply(request, vec![a("x.test.", 3)]);
                if request.queries[0].name().to_ascii() != "x.test." {
                    answer = reply(request, Vec::new());
                    answer.metadata.response_code = ResponseCode::NXDomain;
                }
                vec![answer.to_vec().unwrap()]
            },
            None,
        )
        .await;
        let timeout = Duration::from_millis(500);
        let dns = Dns::new(&[refusing, answering], DnsProtocol::Udp, timeout).unwrap();
        let (answer, _) = dns.session().query("x.test.", RecordType::A, BUDGET).await;
        assert_eq!(answer, DnsAnswer::Records { count: 1 });
        let only_refusing = Dns::new(&[refusing], DnsProtocol::Udp, timeout).unwrap();
        let (answer, _) = only_refusing
            .session()
            .query("x.test.", RecordType::A, BUDGET)
            .await;
        assert_eq!(answer, DnsAnswer::Refused);
        // NXDOMAIN from the first server that answers ends the question there.
        let dns = Dns::new(&[answering, refusing], DnsProtocol::Udp, timeout).unwrap();
        let (answer, _) = dns.session().query("y.test.", RecordType::A, BUDGET).await;
        assert_eq!(answer, DnsAnswer::NxDomain);
    }

    #[test]
    fn queries_encode_as_hickory_encodes() {
        use hickory_proto::op::Edns;
        for (name, record_type) in [
            ("autodiscover.example.com.", RecordType::A),
            ("autodiscover.example.com.", RecordType::AAAA),
            ("_autodiscover._tcp.example.com.", RecordType::SRV),
            ("example.com.", RecordType::NS),
            ("example.com.", RecordType::SOA),
            ("xn--bcher-kva.example.", RecordType::CNAME),
            (".", RecordType::NS),
            (
                &format!("{}.{}.test.", "a".repeat(63), "b".repeat(63)),
                RecordType::A,
            ),
        ] {
            let name = Name::from_ascii(name).unwrap();
            let mut request = Message::query();
            request.metadata.id = 0xbeef;
            request.metadata.recursion_desired = true;
            request.add_query(Query::query(name.clone(), record_type));
            let mut edns = Edns::new();
            edns.set_max_payload(UDP_PAYLOAD);
            request.set_edns(edns);
            let asked = Asked {
                name: &name,
                record_type,
            };
            assert_eq!(
                asked.encode(0xbeef).ok(),
                Some(request.to_vec().unwrap()),
                "{name} {record_type}"
            );
        }
    }

    #[test]
    fn resolv_conf_names_at_most_three_servers() {
        let text = "# comment\nsearch example.com\nnameserver 192.0.2.1\n\
                    nameserver fe80::1%eth0\nnameserver bogus\nnameserver 192.0.2.3\n\
                    nameserver 192.0.2.4\n";
        assert_eq!(
            system_nameservers(text),
            vec![
                SocketAddr::from(([192, 0, 2, 1], 53)),
                SocketAddr::new("fe80::1".parse().unwrap(), 53),
                SocketAddr::from(([192, 0, 2, 3], 53)),
            ]
        );
        assert_eq!(
            system_nameservers("options ndots:2\n"),
            vec![DEFAULT_NAMESERVER]
        );
    }

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
