//! HTTP/1.1 requests over a connection the probe opened itself: no pooling, no automatic
//! redirects, a timeout on the response head and on the body, and a cap on the body size.

use crate::model::facts::{
    BODY_CAP, BodyKind, HttpExchange, HttpFailure, HttpMethod, is_exchange_header,
};
use crate::model::text::{starts_with_ignoring_ascii_case, truncate_at_boundary};
use crate::protocol::microsoft365;
use crate::protocol::{pox, redirect};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{
    CONTENT_TYPE, HOST, LOCATION, RETRY_AFTER, SERVER, USER_AGENT, WWW_AUTHENTICATE,
};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Request};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// The User-Agent of every probe request.
pub const PROBE_USER_AGENT: &str = concat!(
    "Microsoft Office/16.0 (compatible; autodiscover-exporter/",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// The request headers whose names and values are fixed, made once: a name parsed from text
/// (`X-AnchorMailbox`) is checked and copied on every request. HTTP/1.1 names go out in lower
/// case either way.
const MAPI_HTTP_CAPABILITY: HeaderName = HeaderName::from_static("x-mapihttpcapability");
const ANCHOR_MAILBOX: HeaderName = HeaderName::from_static("x-anchormailbox");
const XML_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// One HTTP/1.1 connection. Its I/O is driven by the probe's own task while a request is
/// under way (no task of its own: spawning one and waking it across tasks for every request
/// cost more than the request's parsing); dropping it closes the connection.
pub struct HttpConnection {
    sender: SendRequest<Full<Bytes>>,
    /// The connection's I/O; `None` once it has ended.
    io: Option<ConnectionIo>,
}

type ConnectionIo = Pin<Box<dyn Future<Output = ()> + Send>>;

impl HttpConnection {
    /// Starts HTTP/1.1 over `stream`.
    pub async fn open<S>(stream: S, timeout: Duration) -> Result<Self, HttpFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handshake = http1::Builder::new()
            .max_buf_size(64 * 1024)
            .handshake(TokioIo::new(stream));
        let (sender, connection) = match tokio::time::timeout(timeout, handshake).await {
            Err(_) => return Err(HttpFailure::Timeout),
            Ok(Err(error)) => {
                return Err(HttpFailure::Protocol {
                    detail: error.to_string(),
                });
            }
            Ok(Ok(parts)) => parts,
        };
        let io: ConnectionIo = Box::pin(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            io: Some(io),
        })
    }

    /// Sends the Autodiscover POST for `address`.
    pub async fn post_autodiscover(
        &mut self,
        host_header: &str,
        path: &str,
        address: &str,
        timeout: Duration,
    ) -> HttpExchange {
        let request = Request::post(path)
            .header(HOST, host_header)
            .header(USER_AGENT, HeaderValue::from_static(PROBE_USER_AGENT))
            .header(CONTENT_TYPE, HeaderValue::from_static(XML_CONTENT_TYPE))
            .header(MAPI_HTTP_CAPABILITY, HeaderValue::from_static("1"))
            .header(ANCHOR_MAILBOX, address)
            .body(Full::new(Bytes::from(pox::request_body(address))));
        self.send(HttpMethod::Post, request, timeout, BODY_CAP)
            .await
    }

    /// Sends the Autodiscover POST for `address` with an `Authorization` header. The header is
    /// marked sensitive and never recorded in the exchange.
    pub async fn post_autodiscover_authorized(
        &mut self,
        host_header: &str,
        path: &str,
        address: &str,
        authorization: &str,
        timeout: Duration,
    ) -> HttpExchange {
        let Ok(mut value) = HeaderValue::from_str(authorization) else {
            return HttpExchange::failed(
                HttpMethod::Post,
                HttpFailure::Protocol {
                    detail: "the credentials cannot be sent in an HTTP header".into(),
                },
            );
        };
        value.set_sensitive(true);
        let request = Request::post(path)
            .header(HOST, host_header)
            .header(USER_AGENT, HeaderValue::from_static(PROBE_USER_AGENT))
            .header(CONTENT_TYPE, HeaderValue::from_static(XML_CONTENT_TYPE))
            .header(hyper::header::AUTHORIZATION, value)
            .header(MAPI_HTTP_CAPABILITY, HeaderValue::from_static("1"))
            .header(ANCHOR_MAILBOX, address)
            .body(Full::new(Bytes::from(pox::request_body(address))));
        self.send(HttpMethod::Post, request, timeout, BODY_CAP)
            .await
    }

    /// Sends an unauthenticated GET (port-80 redirect step, Exchange fingerprint).
    pub async fn get(&mut self, host_header: &str, path: &str, timeout: Duration) -> HttpExchange {
        let request = Request::get(path)
            .header(HOST, host_header)
            .header(USER_AGENT, HeaderValue::from_static(PROBE_USER_AGENT))
            .body(Full::new(Bytes::new()));
        self.send(HttpMethod::Get, request, timeout, BODY_CAP).await
    }

    /// Sends a GET and returns the raw body too, read up to `cap` bytes (AIA certificates).
    pub async fn get_bytes(
        &mut self,
        host_header: &str,
        path: &str,
        timeout: Duration,
        cap: usize,
    ) -> (HttpExchange, Vec<u8>) {
        let request = Request::get(path)
            .header(HOST, host_header)
            .header(USER_AGENT, HeaderValue::from_static(PROBE_USER_AGENT))
            .body(Full::new(Bytes::new()));
        self.exchange(HttpMethod::Get, request, timeout, cap).await
    }

    /// The connection can take another request.
    pub fn is_reusable(&self) -> bool {
        !self.sender.is_closed()
    }

    /// The connection is open and idle now: its I/O is polled once without waiting, so that a
    /// close by the server (or the end of a connection that cannot be reused) already received
    /// is noticed before a request is sent on it.
    pub fn is_open_now(&mut self) -> bool {
        if let Some(io) = &mut self.io {
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            if io.as_mut().poll(&mut context).is_ready() {
                self.io = None;
            }
        }
        self.io.is_some() && self.sender.is_ready()
    }

    async fn send(
        &mut self,
        method: HttpMethod,
        request: Result<Request<Full<Bytes>>, hyper::http::Error>,
        timeout: Duration,
        cap: usize,
    ) -> HttpExchange {
        self.exchange(method, request, timeout, cap).await.0
    }

    async fn exchange(
        &mut self,
        method: HttpMethod,
        request: Result<Request<Full<Bytes>>, hyper::http::Error>,
        timeout: Duration,
        cap: usize,
    ) -> (HttpExchange, Vec<u8>) {
        let started = Instant::now();
        let mut exchange = HttpExchange::failed(method, HttpFailure::Timeout);
        exchange.failure = None;
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                exchange.failure = Some(HttpFailure::Protocol {
                    detail: format!("cannot build the request: {error}"),
                });
                return (exchange, Vec::new());
            }
        };
        let Self { sender, io } = self;
        let ready = driven(io, tokio::time::timeout(timeout, sender.ready())).await;
        let response = match ready {
            Ok(Ok(())) => {
                driven(
                    io,
                    tokio::time::timeout(timeout, sender.send_request(request)),
                )
                .await
            }
            Ok(Err(error)) => Ok(Err(error)),
            Err(elapsed) => Err(elapsed),
        };
        exchange.time_to_first_byte_seconds = started.elapsed().as_secs_f64();
        let response = match response {
            Err(_) => {
                exchange.failure = Some(HttpFailure::Timeout);
                exchange.duration_seconds = started.elapsed().as_secs_f64();
                return (exchange, Vec::new());
            }
            Ok(Err(error)) => {
                exchange.failure = Some(HttpFailure::Protocol {
                    detail: error.to_string(),
                });
                exchange.duration_seconds = started.elapsed().as_secs_f64();
                return (exchange, Vec::new());
            }
            Ok(Ok(response)) => response,
        };
        exchange.status = Some(response.status().as_u16());
        record_headers(&mut exchange, response.headers());
        let (body, read_failure) =
            driven(io, read_capped(response.into_body(), timeout, cap)).await;
        exchange.failure = read_failure;
        exchange.body_bytes = body.len().min(cap);
        exchange.body = if body.len() > cap {
            BodyKind::TooLarge
        } else {
            body_kind(&body, exchange.content_type.as_deref())
        };
        exchange.duration_seconds = started.elapsed().as_secs_f64();
        (exchange, body)
    }
}

/// Runs `work` while driving the connection's I/O in the same task.
async fn driven<F: Future>(io: &mut Option<ConnectionIo>, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        if let Some(connection) = io
            && connection.as_mut().poll(cx).is_ready()
        {
            *io = None;
        }
        work.as_mut().poll(cx)
    })
    .await
}

/// Reads at most `cap + 1` bytes, within `timeout` in all (slow-drip bodies end there).
async fn read_capped(
    mut body: hyper::body::Incoming,
    timeout: Duration,
    cap: usize,
) -> (Vec<u8>, Option<HttpFailure>) {
    let mut collected = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return (collected, Some(HttpFailure::Timeout)),
            Ok(None) => return (collected, None),
            Ok(Some(Err(error))) => {
                return (
                    collected,
                    Some(HttpFailure::Protocol {
                        detail: error.to_string(),
                    }),
                );
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            // `collected` never exceeds `cap + 1`: the check below returns as soon as it does.
            let room = (cap + 1).saturating_sub(collected.len());
            collected.extend_from_slice(&data[..data.len().min(room)]);
            if collected.len() > cap {
                return (collected, None);
            }
        }
    }
}

fn record_headers(exchange: &mut HttpExchange, headers: &HeaderMap) {
    let text = |value: &HeaderValue| {
        let mut text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        truncate_at_boundary(&mut text, 512);
        text
    };
    exchange.location = headers
        .get(LOCATION)
        .map(|value| redirect::redact_userinfo(&text(value)));
    exchange.server = headers.get(SERVER).map(text);
    exchange.content_type = headers.get(CONTENT_TYPE).map(text);
    exchange.retry_after_seconds = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    exchange.www_authenticate = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .take(16)
        .map(text)
        .collect();
    for (name, value) in headers {
        let name = name.as_str();
        if is_exchange_header(name) && exchange.exchange_headers.len() < 16 {
            exchange
                .exchange_headers
                .push((canonical_header(name), text(value)));
        }
    }
}

fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| match part {
            "x" => "X".to_owned(),
            "soap" => "SOAP".to_owned(),
            "oauth" => "OAuth".to_owned(),
            "wssecurity" => "WSSecurity".to_owned(),
            "feserver" => "FEServer".to_owned(),
            "owa" => "OWA".to_owned(),
            other => {
                let mut chars = other.chars();
                chars.next().map_or(String::new(), |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn contains_ignoring_ascii_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// What a body is: an Autodiscover response, an HTML page, or something else.
pub fn body_kind(body: &[u8], content_type: Option<&str>) -> BodyKind {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return BodyKind::Empty;
    }
    if starts_with_ignoring_ascii_case(trimmed, "<html")
        || starts_with_ignoring_ascii_case(trimmed, "<!doctype html")
    {
        // An HTML document is never an Autodiscover answer (whose root element is
        // `Autodiscover`): the error pages of 401s and 404s need no XML parse.
        return BodyKind::Html;
    }
    if trimmed.starts_with('<') {
        match pox::parse_response(trimmed) {
            Ok(response) => return BodyKind::Autodiscover { response },
            Err(error) => {
                let head = trimmed
                    .char_indices()
                    .nth(512)
                    .map_or(trimmed, |(end, _)| &trimmed[..end]);
                let html = contains_ignoring_ascii_case(head, "<html")
                    || contains_ignoring_ascii_case(head, "<!doctype html");
                if html || content_type.is_some_and(|c| c.contains("html")) {
                    return BodyKind::Html;
                }
                return BodyKind::Other {
                    detail: error.to_string(),
                };
            }
        }
    }
    if trimmed.starts_with('{') {
        return BodyKind::Microsoft365 {
            answer: microsoft365::parse_answer(trimmed),
        };
    }
    if content_type.is_some_and(|c| c.contains("html")) {
        return BodyKind::Html;
    }
    BodyKind::Other {
        detail: format!(
            "{} body of {} bytes",
            content_type.unwrap_or("untyped"),
            body.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_autodiscover_post_carries_outlooks_headers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                stream.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            stream
                .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            // The stream goes back with the head: closing it with the body unread would send a
            // reset that could race the client's read of the answer.
            (String::from_utf8(head).unwrap(), stream)
        });
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let timeout = Duration::from_secs(5);
        let mut connection = HttpConnection::open(tcp, timeout).await.unwrap();
        let exchange = connection
            .post_autodiscover(
                "autodiscover.example.com",
                "/Autodiscover/Autodiscover.xml",
                "someone@example.com",
                timeout,
            )
            .await;
        assert_eq!(exchange.status, Some(401));
        let (head, _stream) = tokio::time::timeout(timeout, server)
            .await
            .unwrap()
            .unwrap();
        assert!(
            head.starts_with("POST /Autodiscover/Autodiscover.xml HTTP/1.1\r\n"),
            "{head}"
        );
        for line in [
            "host: autodiscover.example.com",
            &format!("user-agent: {PROBE_USER_AGENT}"),
            "content-type: text/xml; charset=utf-8",
            "x-mapihttpcapability: 1",
            "x-anchormailbox: someone@example.com",
        ] {
            assert!(
                head.contains(&format!("{line}\r\n")),
                "{line} missing from {head}"
            );
        }
    }

    #[test]
    fn bodies_are_classified() {
        assert_eq!(body_kind(b"", None), BodyKind::Empty);
        assert_eq!(
            body_kind(b"<!DOCTYPE html><html><body>Parked</body></html>", None),
            BodyKind::Html
        );
        assert_eq!(body_kind(b"hello", Some("text/html")), BodyKind::Html);
        assert_eq!(body_kind(b"<p>x</p><HTML lang=en>", None), BodyKind::Html);
        // Only the head of the body is looked at.
        let late = format!("<p>{}</p><html>", "\u{e9}".repeat(600));
        assert!(matches!(
            body_kind(late.as_bytes(), None),
            BodyKind::Other { .. }
        ));
        assert!(matches!(
            body_kind(b"{\"a\":1}", Some("application/json")),
            BodyKind::Microsoft365 {
                answer: crate::model::facts::Microsoft365Json::Other { .. }
            }
        ));
        let settings = pox::settings_response("A", "mail.example");
        assert!(matches!(
            body_kind(settings.as_bytes(), Some("text/xml")),
            BodyKind::Autodiscover { .. }
        ));
        // An HTML document is a page whatever it holds: Outlook reads an answer only from an
        // XML document, and the XML reader does not look at the root element's name.
        let wrapped = "\u{feff} <HTML><Response><Account><Action>redirectAddr</Action>\
            <RedirectAddr>a@mail.example</RedirectAddr></Account></Response></HTML>";
        assert!(matches!(
            pox::parse_response(wrapped.trim_start_matches('\u{feff}').trim()),
            Ok(crate::model::pox::PoxResponse::RedirectAddr { .. })
        ));
        assert_eq!(body_kind(wrapped.as_bytes(), None), BodyKind::Html);
        let doctype = format!("<!doctype HTML>{}", &wrapped[4..]);
        assert_eq!(body_kind(doctype.as_bytes(), None), BodyKind::Html);
    }

    #[test]
    fn exchange_header_names_are_canonical() {
        assert_eq!(canonical_header("x-soap-enabled"), "X-SOAP-Enabled");
        assert_eq!(
            canonical_header("x-wssecurity-enabled"),
            "X-WSSecurity-Enabled"
        );
        assert_eq!(canonical_header("x-oauth-enabled"), "X-OAuth-Enabled");
        assert_eq!(canonical_header("x-feserver"), "X-FEServer");
    }
}
