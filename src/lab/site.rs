//! Simulated web servers: Exchange, web sites, parking pages, redirectors and hostile servers,
//! over TLS (port 443) or plain HTTP (port 80).

use super::pki::ServerIdentity;
use crate::protocol::pox;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How a simulated server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Exchange: the Autodiscover path answers 401 with Negotiate and NTLM challenges and
    /// Exchange's `X-*-Enabled` headers, so do EWS, OAB, MAPI and RPC; ECP sends browsers to the
    /// sign-in page; everything else is 404.
    Exchange,
    /// Exchange (or a hosted mail server) whose Autodiscover answers the POST with these
    /// settings without authentication; the other paths as [`Behaviour::Exchange`].
    Settings {
        /// The settings document.
        xml: String,
    },
    /// Exchange whose Autodiscover answers the POST with these settings only to Basic
    /// authentication with this username and password (401 with Negotiate, NTLM and Basic
    /// otherwise); the other paths as [`Behaviour::Exchange`].
    SettingsWithCredentials {
        /// The account.
        username: String,
        /// Its password.
        password: String,
        /// The settings document.
        xml: String,
    },
    /// A web site: 200 HTML on `/`, 404 on the Autodiscover path.
    WebSite,
    /// A parking page: 200 HTML on every path.
    Parking,
    /// A web server that asks for a password everywhere (Basic), without Exchange's headers.
    BasicAuth,
    /// Every request is redirected.
    Redirect {
        /// 301, 302, 307 or 308.
        status: u16,
        /// The Location.
        location: String,
    },
    /// Autodiscover answers `redirectAddr`.
    RedirectAddr {
        /// The new address.
        address: String,
    },
    /// Autodiscover answers `redirectUrl`.
    RedirectUrl {
        /// The new URL.
        url: String,
    },
    /// 200 with a body of this many bytes (streamed, never held in memory).
    HugeBody {
        /// Body size.
        bytes: u64,
    },
    /// Accepts the connection and never says anything.
    Silent,
    /// 200, then one byte of body every 300 ms, forever.
    SlowDrip,
    /// 200 with a truncated Autodiscover document.
    BrokenXml,
    /// Microsoft 365's service: the JSON Autodiscover answers 200 with a `Url` for the known
    /// addresses and 302 for every other one; the POX path answers 401 (Bearer, Basic).
    Microsoft365 {
        /// Known addresses (lower-case) and the POX URL the service names for each.
        known: Vec<(String, String)>,
    },
    /// Microsoft 365 throttling its JSON Autodiscover: 429 Too Many Requests with `Retry-After`
    /// there, while the POX path still answers 401.
    Microsoft365Throttling {
        /// Seconds in `Retry-After`.
        retry_after: u64,
    },
    /// The same bytes on every path (an AIA URL serving a certificate).
    File {
        /// The body.
        body: Vec<u8>,
    },
    /// [`Behaviour::Settings`] for the first request of each connection; any later request on
    /// the connection is read and left unanswered, the connection closed (a server whose
    /// keep-alive ends just as the next request arrives).
    SettingsOncePerConnection {
        /// The settings document.
        xml: String,
    },
    /// Exactly this answer to every request, header bytes as given (a hostile server).
    Raw {
        /// The status code.
        status: u16,
        /// Header names and raw values (bytes 0x80..0xff allowed, as HTTP allows them).
        headers: Vec<(String, Vec<u8>)>,
        /// The body.
        body: Vec<u8>,
    },
}

/// Serves `behaviour` on `listener` (over TLS with `identity`) until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    identity: Option<ServerIdentity>,
    behaviour: Behaviour,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = identity.and_then(|id| tls_acceptor(id).ok());
    let behaviour = Arc::new(behaviour);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let behaviour = behaviour.clone();
        let acceptor = acceptor.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            if *behaviour == Behaviour::Silent {
                // Hold the socket open, say nothing.
                let _ = stop.changed().await;
                drop(tcp);
                return;
            }
            let served = Arc::new(AtomicUsize::new(0));
            let service = service_fn(move |request| {
                let earlier = served.fetch_add(1, Ordering::Relaxed);
                answer(behaviour.clone(), request, earlier)
            });
            let builder = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let connection = builder.serve_connection(TokioIo::new(tls), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = stop.changed() => {}
                    }
                }
                None => {
                    let connection = builder.serve_connection(TokioIo::new(tcp), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        });
    }
}

fn tls_acceptor(identity: ServerIdentity) -> Result<TlsAcceptor, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

type ResponseBody = BoxBody<Bytes, Infallible>;

/// A request the server leaves unanswered, closing the connection.
#[derive(Debug)]
struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server closes the connection without answering")
    }
}

impl std::error::Error for HangUp {}

/// The answer to `request`, the connection's request number `earlier` (from 0).
async fn answer(
    behaviour: Arc<Behaviour>,
    request: Request<Incoming>,
    earlier: usize,
) -> Result<Response<ResponseBody>, HangUp> {
    let path = request.uri().path().to_owned();
    let autodiscover_path = path.eq_ignore_ascii_case("/autodiscover/autodiscover.xml");
    let is_post = request.method() == hyper::Method::POST;
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::probe::credentials::decode_basic);
    let lower = path.to_ascii_lowercase();
    let exchange_service = ["/ews/", "/oab/", "/mapi/", "/rpc/"]
        .iter()
        .any(|p| lower.starts_with(p));
    let exchange_ecp = lower.starts_with("/ecp");
    // Read (and bound) the request body so the connection stays usable.
    let body = http_body_util::Limited::new(request.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let exchange_like = matches!(
        &*behaviour,
        Behaviour::Exchange
            | Behaviour::Settings { .. }
            | Behaviour::SettingsOncePerConnection { .. }
            | Behaviour::SettingsWithCredentials { .. }
    );
    if earlier > 0 && matches!(&*behaviour, Behaviour::SettingsOncePerConnection { .. }) {
        return Err(HangUp);
    }
    let response = match &*behaviour {
        _ if exchange_like && exchange_service => exchange_challenge(false),
        _ if exchange_like && exchange_ecp => {
            let mut response = status(StatusCode::FOUND);
            response.headers_mut().insert(
                hyper::header::LOCATION,
                hyper::header::HeaderValue::from_static("/owa/auth/logon.aspx?url=/ecp/"),
            );
            response
        }
        Behaviour::Exchange if autodiscover_path => exchange_challenge(false),
        Behaviour::Settings { xml: document }
        | Behaviour::SettingsOncePerConnection { xml: document }
            if autodiscover_path && is_post =>
        {
            xml(with_address(document, &body))
        }
        Behaviour::SettingsWithCredentials {
            username,
            password,
            xml: document,
        } if autodiscover_path => {
            let authorized = authorization
                .as_ref()
                .is_some_and(|(u, p)| u == username && p.as_str() == password.as_str());
            if authorized && is_post {
                xml(with_address(document, &body))
            } else {
                exchange_challenge(true)
            }
        }
        Behaviour::RedirectAddr { address } if autodiscover_path && is_post => xml(
            pox::redirect_response("redirectAddr", "RedirectAddr", address),
        ),
        Behaviour::RedirectUrl { url } if autodiscover_path && is_post => {
            xml(pox::redirect_response("redirectUrl", "RedirectUrl", url))
        }
        Behaviour::Exchange
        | Behaviour::Settings { .. }
        | Behaviour::SettingsOncePerConnection { .. }
        | Behaviour::SettingsWithCredentials { .. }
        | Behaviour::RedirectAddr { .. }
        | Behaviour::RedirectUrl { .. } => status(StatusCode::NOT_FOUND),
        Behaviour::WebSite if !autodiscover_path => html(),
        Behaviour::WebSite => status(StatusCode::NOT_FOUND),
        Behaviour::Parking => html(),
        Behaviour::BasicAuth => {
            let mut response = status(StatusCode::UNAUTHORIZED);
            response.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Basic realm=\"members\""),
            );
            response
        }
        Behaviour::Redirect {
            status: code,
            location,
        } => {
            let mut response = status(StatusCode::from_u16(*code).unwrap_or(StatusCode::FOUND));
            if let Ok(value) = hyper::header::HeaderValue::from_str(location) {
                response
                    .headers_mut()
                    .insert(hyper::header::LOCATION, value);
            }
            response
        }
        Behaviour::HugeBody { bytes } => Response::new(Repeat::new(*bytes).boxed()),
        Behaviour::SlowDrip => Response::new(Drip::new().boxed()),
        Behaviour::BrokenXml => {
            xml("<?xml version=\"1.0\"?><Autodiscover><Response><Account><Action>sett".to_owned())
        }
        Behaviour::Silent => status(StatusCode::NOT_FOUND),
        Behaviour::Microsoft365 { .. } if autodiscover_path => microsoft365_challenge(),
        Behaviour::Microsoft365 { known } => microsoft365_json(known, &path),
        Behaviour::Raw {
            status: code,
            headers,
            body,
        } => {
            let mut response = Response::new(Full::new(Bytes::from(body.clone())).boxed());
            *response.status_mut() = StatusCode::from_u16(*code).unwrap_or(StatusCode::OK);
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    hyper::header::HeaderName::from_bytes(name.as_bytes()),
                    hyper::header::HeaderValue::from_bytes(value),
                ) {
                    response.headers_mut().append(name, value);
                }
            }
            response
        }
        Behaviour::Microsoft365Throttling { .. } if autodiscover_path => microsoft365_challenge(),
        Behaviour::Microsoft365Throttling { retry_after } => {
            let mut response = status(StatusCode::TOO_MANY_REQUESTS);
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, (*retry_after).into());
            response
        }
        Behaviour::File { body } => {
            let mut response = Response::new(Full::new(Bytes::from(body.clone())).boxed());
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/pkix-cert"),
            );
            response
        }
    };
    Ok(response)
}

/// The settings document with `@ADDRESS@` replaced by the address the request asks for.
fn with_address(document: &str, request: &[u8]) -> String {
    let address = pox::requested_address(&String::from_utf8_lossy(request))
        .unwrap_or_else(|| "unknown@lab.example".into());
    document.replace("@ADDRESS@", &pox::escape(&address))
}

fn exchange_challenge(basic: bool) -> Response<ResponseBody> {
    let mut response = status(StatusCode::UNAUTHORIZED);
    let headers = response.headers_mut();
    if basic {
        headers.append(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"lab\""),
        );
    }
    for (name, value) in [
        ("WWW-Authenticate", "Negotiate"),
        ("WWW-Authenticate", "NTLM"),
        ("X-SOAP-Enabled", "True"),
        ("X-WSSecurity-Enabled", "True"),
        ("X-OAuth-Enabled", "True"),
        ("X-FEServer", "LAB-EX01"),
        ("Server", "Microsoft-IIS/10.0"),
    ] {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// Microsoft 365's answer to `GET /autodiscover/autodiscover.json/v1.0/{address}`.
fn microsoft365_json(known: &[(String, String)], path: &str) -> Response<ResponseBody> {
    const PREFIX: &str = "/autodiscover/autodiscover.json/v1.0/";
    let lower = path.to_ascii_lowercase();
    let Some(address) = lower.strip_prefix(PREFIX) else {
        return status(StatusCode::NOT_FOUND);
    };
    match known.iter().find(|(a, _)| a == address) {
        Some((_, url)) => {
            let body = serde_json::json!({"Protocol": "AutodiscoverV1", "Url": url}).to_string();
            let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
        }
        None => {
            let mut response = status(StatusCode::FOUND);
            if let Ok(value) = hyper::header::HeaderValue::from_str(&format!(
                "https://outlook.office365.com{PREFIX}{address}?Protocol=AutodiscoverV1"
            )) {
                response
                    .headers_mut()
                    .insert(hyper::header::LOCATION, value);
            }
            response
        }
    }
}

fn microsoft365_challenge() -> Response<ResponseBody> {
    let mut response = status(StatusCode::UNAUTHORIZED);
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "WWW-Authenticate",
            "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\"",
        ),
        ("WWW-Authenticate", "Basic Realm=\"\""),
        ("X-SOAP-Enabled", "True"),
        ("X-OAuth-Enabled", "True"),
        ("X-FEServer", "LAB365FE01"),
    ] {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

fn status(code: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = code;
    response
}

fn xml(body: String) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    response
}

fn html() -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(
            b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>Welcome</h1></body></html>",
        ))
        .boxed(),
    );
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A body that never ends: one byte every 300 ms.
struct Drip {
    next: Pin<Box<tokio::time::Sleep>>,
}

impl Drip {
    fn new() -> Self {
        Self {
            next: Box::pin(tokio::time::sleep(std::time::Duration::from_millis(300))),
        }
    }
}

impl Body for Drip {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.next = Box::pin(tokio::time::sleep(std::time::Duration::from_millis(300)));
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"<")))))
            }
        }
    }
}

/// A body of `remaining` bytes, produced 64 KiB at a time.
struct Repeat {
    remaining: u64,
    chunk: Bytes,
}

impl Repeat {
    fn new(bytes: u64) -> Self {
        Self {
            remaining: bytes,
            chunk: Bytes::from(vec![b'<'; 64 * 1024]),
        }
    }
}

impl Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let size = self.remaining.min(self.chunk.len() as u64);
        self.remaining -= size;
        let data = self.chunk.slice(..size as usize);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}
