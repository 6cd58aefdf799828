//! The HTTP server: `/metrics`, `/probe`, `/`, `/domains/D`, `/-/reload`, `/-/healthy`,
//! `/-/ready`. The caller binds the listener, so tests serve on `127.0.0.1:0`.

use super::store::{DomainEntry, Latest};
use super::web_config::{Authorization, WebConfig};
use super::{Exporter, ProbeRefusal};
use crate::diagnose;
use crate::model::address::Domain;
use crate::net::connect::web_connection_limit;
use crate::net::tls::unix_now;
use crate::render::gzip;
use crate::render::html::{self, DomainView, PageContext, StatusQuery};
use crate::render::metrics::{self, Format};
use crate::render::trace::{self, Colour};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, LOCATION,
    RETRY_AFTER, VARY, WWW_AUTHENTICATE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Subtracted from Prometheus's scrape timeout so the answer arrives before it gives up.
const SCRAPE_TIMEOUT_OFFSET: Duration = Duration::from_millis(500);
/// The shortest probe budget a scraper's timeout header can ask for.
const MIN_SCRAPE_DEADLINE: Duration = Duration::from_millis(500);
/// The longest: no scrape waits longer than this (the configured probe timeout is at most 10 m).
const MAX_SCRAPE_DEADLINE: Duration = Duration::from_secs(600);

/// How long open requests may take to finish after a shutdown signal, by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Connections served at once, by default (or a quarter of the file descriptor limit when
/// lower: `net::connect::web_connection_limit`).
pub const MAX_CONNECTIONS: usize = 16_384;

/// How the web server runs.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// `--web.config.file`: TLS, basic auth, extra headers.
    pub config: Option<Arc<WebConfig>>,
    /// `--web.enable-lifecycle`: `POST /-/reload` works (SIGHUP always does).
    pub enable_lifecycle: bool,
    /// `--web.shutdown-grace-period`: how long open requests may finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Connections served at once; further clients wait in the listen backlog, which costs the
    /// exporter no file descriptor.
    pub max_connections: usize,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            config: None,
            enable_lifecycle: false,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_connections: web_connection_limit(MAX_CONNECTIONS),
        }
    }
}

/// Serves until `shutdown` completes, then lets open requests finish (up to the grace period).
pub async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    options: WebOptions,
    shutdown: impl Future<Output = ()>,
) {
    let options = Arc::new(options);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Every connection's task, so none outlives the grace period.
    let mut connections = tokio::task::JoinSet::new();
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        // A slot first: past the bound, clients wait in the kernel's backlog instead of holding
        // descriptors the probes need.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, _) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: identical warnings are rate-limited.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let exporter = exporter.clone();
        let service = {
            let options = options.clone();
            service_fn(move |request| {
                let exporter = exporter.clone();
                let options = options.clone();
                async move { Ok::<_, Infallible>(handle(&exporter, &options, request).await) }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        match options.config.as_ref().and_then(|w| w.tls.clone()) {
            Some(acceptor) => {
                let watcher = graceful.watcher();
                connections.spawn(async move {
                    let _slot = slot;
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let connection = builder.serve_connection(TokioIo::new(tls), service);
                    let _ = watcher.watch(connection).await;
                });
            }
            None => {
                let connection = builder.serve_connection(TokioIo::new(tcp), service);
                let watched = graceful.watch(connection);
                connections.spawn(async move {
                    let _slot = slot;
                    let _ = watched.await;
                });
            }
        }
    }
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = %humantime::format_duration(options.shutdown_grace),
            "requests still open after the shutdown grace period were cut off"
        );
    }
    connections.shutdown().await;
}

async fn handle(
    exporter: &Arc<Exporter>,
    options: &WebOptions,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let mut response = route(exporter, options, request).await;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(policy) = HeaderValue::from_str(&exporter.shared().content_security_policy) {
        headers.insert(hyper::header::CONTENT_SECURITY_POLICY, policy);
    }
    if let Some(web) = &options.config {
        for (name, value) in &web.headers {
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

async fn route(
    exporter: &Arc<Exporter>,
    options: &WebOptions,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if let Some(web) = &options.config {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match web.check(header).await {
            Authorization::Allowed => {}
            Authorization::Denied => {
                let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"autodiscover-exporter\""),
                );
                return response;
            }
            Authorization::Busy => {
                let mut response = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many password checks at once; try again\n",
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        }
    }
    let shared = exporter.shared();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let accept = request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let query = parse_query(request.uri().query());
    match (method, path.as_str()) {
        (Method::GET | Method::HEAD, "/metrics") => {
            let format = Format::negotiate(accept.as_deref());
            let gzip = gzip::accepts_gzip(
                request
                    .headers()
                    .get(ACCEPT_ENCODING)
                    .and_then(|v| v.to_str().ok()),
            );
            let mut response = if gzip {
                match shared.exposition.body(shared, format).await {
                    Ok(body) => {
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        response
                            .headers_mut()
                            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                        response
                    }
                    Err(error) => {
                        return text(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &format!("compressing the metrics failed: {error}\n"),
                        );
                    }
                }
            } else {
                match super::exposition::plain(shared, format).await {
                    Ok(out) => Response::new(Full::new(Bytes::from(out))),
                    Err(error) => {
                        return text(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &format!("rendering the metrics failed: {error}\n"),
                        );
                    }
                }
            };
            response
                .headers_mut()
                .insert(VARY, HeaderValue::from_static("Accept-Encoding"));
            with_type(response, format.content_type())
        }
        (Method::GET, "/probe") => {
            let Some(target) = query
                .iter()
                .find(|(k, _)| k == "target")
                .map(|(_, v)| v.clone())
            else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "missing the target parameter: /probe?target=DOMAIN_OR_ADDRESS\n",
                );
            };
            let debug = query.iter().any(|(k, v)| k == "debug" && v == "true");
            let deadline = scrape_deadline(
                request
                    .headers()
                    .get("X-Prometheus-Scrape-Timeout-Seconds")
                    .and_then(|v| v.to_str().ok()),
            );
            match exporter.probe_now(&target, deadline).await {
                Err(refusal @ (ProbeRefusal::Invalid(_) | ProbeRefusal::NotConfigured(_))) => {
                    text(StatusCode::BAD_REQUEST, &format!("{refusal}\n"))
                }
                Err(refusal @ ProbeRefusal::Busy(_)) => {
                    let mut response =
                        text(StatusCode::SERVICE_UNAVAILABLE, &format!("{refusal}\n"));
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
                    response
                }
                Ok((report, config)) => {
                    // No history for an on-demand probe; a configured domain's memory still
                    // gives the delegation change time.
                    let memory = shared
                        .store
                        .get(&config.domain)
                        .and_then(|e| e.latest)
                        .map(|l| l.memory.clone())
                        .unwrap_or_default();
                    let labels = metrics::domain_labels(config.domain.display(), &config.labels);
                    let samples = metrics::render_domain_with_history(
                        &report,
                        &labels,
                        config.interval,
                        &memory,
                    );
                    let format = Format::negotiate(accept.as_deref());
                    let mut out = String::new();
                    // Writing into a String cannot fail.
                    let _ = metrics::write_domains(&mut out, format, std::iter::once(&samples));
                    if debug {
                        let mut explained = (*report).clone();
                        explained.findings = diagnose::explain(&explained, &config.expect);
                        let body = format!(
                            "Trace of the probe\n\n{}\n\nMetrics that would have been returned\n\n{}",
                            trace::render(&explained, Colour::Off),
                            out
                        );
                        return text(StatusCode::OK, &body);
                    }
                    if format == Format::OpenMetrics {
                        out.push_str("# EOF\n");
                    }
                    with_type(
                        Response::new(Full::new(Bytes::from(out))),
                        format.content_type(),
                    )
                }
            }
        }
        (Method::GET | Method::HEAD, "/") => {
            let entries: Vec<_> = shared.store.read().values().cloned().collect();
            let views: Vec<DomainView<'_>> = entries.iter().map(DomainEntry::view).collect();
            let status_query = StatusQuery::parse(&query);
            if wants_json(accept.as_deref(), &query) {
                let rows = html::status_summaries(&views, &status_query, &shared.external_url);
                return json_response(&rows);
            }
            let reload_failure = shared.reload_failure();
            let ctx = PageContext {
                now: unix_now(),
                base: &shared.external_url,
                reload_failure: reload_failure.as_ref(),
            };
            html_response(html::status_page(&views, &status_query, &ctx))
        }
        (method, p) if p.starts_with("/domains/") => {
            let rest = &p["/domains/".len()..];
            let (raw, action) = match rest.strip_suffix("/probe") {
                Some(raw) => (raw, true),
                None => (rest, false),
            };
            let decoded = percent_decode(raw);
            let Some(entry) = Domain::parse(&decoded)
                .ok()
                .and_then(|domain| shared.store.get(&domain))
            else {
                return text(
                    StatusCode::NOT_FOUND,
                    &format!("{} is not a configured domain\n", decoded.escape_debug()),
                );
            };
            let page = format!(
                "{}/domains/{}",
                shared.external_url,
                html::url_encode(entry.config.domain.display())
            );
            if action {
                if method != Method::POST {
                    return text(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "use POST to probe now (the button on the domain's page)\n",
                    );
                }
                if is_cross_origin(request.headers())
                    && !is_external_origin(request.headers(), &shared.external_url)
                {
                    return text(
                        StatusCode::FORBIDDEN,
                        "cross-origin probe refused: the Origin header names another site\n",
                    );
                }
                probe_and_wait(exporter, &entry).await;
                let mut response = text(StatusCode::SEE_OTHER, "probed; see the domain's page\n");
                if let Ok(location) = HeaderValue::from_str(&page) {
                    response.headers_mut().insert(LOCATION, location);
                }
                return response;
            }
            if !matches!(method, Method::GET | Method::HEAD) {
                return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
            }
            if wants_json(accept.as_deref(), &query) {
                let Some(latest) = &entry.latest else {
                    return with_type(
                        Response::new(Full::new(Bytes::from_static(b"null"))),
                        "application/json",
                    );
                };
                return match domain_json(latest).map_err(|e| e.to_string()) {
                    Ok(json) => with_type(
                        Response::new(Full::new(Bytes::from(json))),
                        "application/json",
                    ),
                    Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n")),
                };
            }
            let reload_failure = shared.reload_failure();
            let ctx = PageContext {
                now: unix_now(),
                base: &shared.external_url,
                reload_failure: reload_failure.as_ref(),
            };
            let report = match entry.latest.as_ref().map(|l| l.report()).transpose() {
                Ok(report) => report,
                Err(error) => {
                    return text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n"));
                }
            };
            html_response(html::domain_page(&entry.view(), report.as_ref(), &ctx))
        }
        (Method::POST | Method::PUT, "/-/reload") if !options.enable_lifecycle => text(
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled: start with --web.enable-lifecycle (SIGHUP always \
             reloads)\n",
        ),
        (Method::POST | Method::PUT, "/-/reload") if is_cross_origin(request.headers()) => text(
            StatusCode::FORBIDDEN,
            "cross-origin reload refused: the Origin header names another site\n",
        ),
        (Method::POST | Method::PUT, "/-/reload") => match reload(exporter).await {
            Ok(count) => text(
                StatusCode::OK,
                &format!("configuration reloaded: {count} domains\n"),
            ),
            Err(error) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("failed to reload config: {error}\n"),
            ),
        },
        (_, "/-/reload") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST to reload the configuration\n",
        ),
        (Method::GET | Method::HEAD, "/-/healthy") => text(StatusCode::OK, "Healthy\n"),
        (Method::GET | Method::HEAD, "/-/ready") => {
            if shared.is_ready() {
                text(StatusCode::OK, "Ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "Not ready\n")
            }
        }
        _ => text(StatusCode::NOT_FOUND, "Not found\n"),
    }
}

/// `/domains/D` as JSON: the report, with the domain's latest changes as `history` (oldest
/// first) and the time of its latest NS change.
fn domain_json(latest: &Latest) -> Result<String, Box<dyn std::error::Error>> {
    let mut value = serde_json::to_value(latest.report()?)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("history".into(), serde_json::to_value(&*latest.timeline)?);
        object.insert(
            "delegation_changed_at".into(),
            serde_json::to_value(latest.memory.delegation_change.as_ref().map(|c| c.at))?,
        );
        object.insert(
            "last_change_at".into(),
            serde_json::to_value(latest.memory.last_change_at)?,
        );
    }
    Ok(serde_json::to_string_pretty(&value)?)
}

/// Asks the domain's task to probe now and waits (bounded by its probe timeout) until a newer
/// result is in the store.
async fn probe_and_wait(exporter: &Arc<Exporter>, entry: &DomainEntry) {
    let shared = exporter.shared();
    // Told apart by identity: a probe triggered within the second of the previous one has the
    // same start second.
    let before = entry.latest.clone();
    let started = unix_now();
    if !exporter.trigger_probe(&entry.config.domain) {
        return;
    }
    let limit = entry.config.probe.timeout + Duration::from_secs(5);
    let _ = tokio::time::timeout(limit, async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = shared
                .store
                .get(&entry.config.domain)
                .and_then(|e| e.latest);
            let newer = match (&now, &before) {
                (Some(now), Some(before)) => !Arc::ptr_eq(now, before),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if newer && now.is_some_and(|l| l.started_at >= started - 1) {
                return;
            }
        }
    })
    .await;
}

fn wants_json(accept: Option<&str>, query: &[(String, String)]) -> bool {
    accept.is_some_and(|a| a.contains("application/json"))
        || query.iter().any(|(k, v)| k == "format" && v == "json")
}

fn json_response<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_string(value) {
        Ok(json) => with_type(
            Response::new(Full::new(Bytes::from(json))),
            "application/json",
        ),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n")),
    }
}

/// Reloads the configuration off the runtime's worker threads (it reads files).
pub async fn reload(exporter: &Arc<Exporter>) -> Result<usize, String> {
    let exporter = exporter.clone();
    tokio::task::spawn_blocking(move || exporter.reload())
        .await
        .unwrap_or_else(|e| Err(format!("reload task failed: {e}")))
}

/// The probe budget a scraper's `X-Prometheus-Scrape-Timeout-Seconds` leaves: the header minus
/// [`SCRAPE_TIMEOUT_OFFSET`], within [`MIN_SCRAPE_DEADLINE`]..=[`MAX_SCRAPE_DEADLINE`]. Anything
/// that is not a positive finite number of seconds is ignored (the configured timeout applies).
fn scrape_deadline(header: Option<&str>) -> Option<Duration> {
    let seconds = header?.trim().parse::<f64>().ok()?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return None;
    }
    // Clamped before the conversion: `Duration::from_secs_f64` panics above u64::MAX seconds.
    let seconds = seconds.min(MAX_SCRAPE_DEADLINE.as_secs_f64());
    Some(
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(MAX_SCRAPE_DEADLINE)
            .saturating_sub(SCRAPE_TIMEOUT_OFFSET)
            .clamp(MIN_SCRAPE_DEADLINE, MAX_SCRAPE_DEADLINE),
    )
}

/// The request comes from a page of another site (a browser sends `Origin` with cross-site
/// requests): its host and port differ from the `Host` the request was sent to, or it is
/// `null`. Requests without `Origin` (curl, Prometheus, scripts) are not cross-origin.
fn is_cross_origin(headers: &hyper::HeaderMap) -> bool {
    let Some(origin) = headers.get(hyper::header::ORIGIN) else {
        return false;
    };
    let Some(host) = headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return true;
    };
    let Some(origin) = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()) else {
        return true;
    };
    let Some(origin_host) = origin.host_str() else {
        return true;
    };
    let authority = match origin.port() {
        Some(port) => format!("{origin_host}:{port}"),
        None => origin_host.to_owned(),
    };
    !authority.eq_ignore_ascii_case(host.trim())
}

/// The request's `Origin` is the origin of `--web.external-url` (pages served behind a proxy
/// post their forms there).
fn is_external_origin(headers: &hyper::HeaderMap, external_url: &str) -> bool {
    let Some(origin) = headers
        .get(hyper::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return false;
    };
    url::Url::parse(external_url).is_ok_and(|external| {
        let external = external.origin();
        external.is_tuple() && external.ascii_serialization() == origin.trim_end_matches('/')
    })
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .take(16)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("d={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = with_type(
        Response::new(Full::new(Bytes::from(body.to_owned()))),
        "text/plain; charset=utf-8",
    );
    *response.status_mut() = status;
    response
}

/// An HTML page; `handle` adds the Content-Security-Policy (every response carries it).
fn html_response(body: String) -> Response<Full<Bytes>> {
    with_type(
        Response::new(Full::new(Bytes::from(body))),
        "text/html; charset=utf-8",
    )
}

fn with_type(
    mut response: Response<Full<Bytes>>,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_origins_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = hyper::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(!is_cross_origin(&headers(&[("host", "localhost:10195")])));
        assert!(!is_cross_origin(&headers(&[
            ("host", "localhost:10195"),
            ("origin", "http://localhost:10195")
        ])));
        assert!(!is_cross_origin(&headers(&[
            ("host", "Exporter.example"),
            ("origin", "https://exporter.example")
        ])));
        assert!(!is_cross_origin(&headers(&[
            ("host", "[::1]:10195"),
            ("origin", "http://[::1]:10195")
        ])));
        for origin in [
            "http://evil.example",
            "http://localhost:8080",
            "null",
            "garbage",
        ] {
            let map = {
                let mut map = headers(&[("host", "localhost:10195")]);
                map.insert("origin", HeaderValue::from_static(origin));
                map
            };
            assert!(is_cross_origin(&map), "{origin}");
        }
        assert!(is_cross_origin(&headers(&[("origin", "http://x")])));
    }

    #[test]
    fn scrape_timeouts_from_outside_are_clamped_never_a_panic() {
        let longest = Some(MAX_SCRAPE_DEADLINE - SCRAPE_TIMEOUT_OFFSET);
        let cases = [
            (Some("9"), Some(Duration::from_millis(8500))),
            (Some(" 10.5 "), Some(Duration::from_secs(10))),
            (Some("0.2"), Some(MIN_SCRAPE_DEADLINE)),
            (Some("1e20"), longest),
            (Some("1e308"), longest),
            (Some("18446744073709551616"), longest),
            (Some("inf"), None),
            (Some("NaN"), None),
            (Some("-1"), None),
            (Some("0"), None),
            (Some("soon"), None),
            (None, None),
        ];
        for (header, expected) in cases {
            assert_eq!(scrape_deadline(header), expected, "{header:?}");
        }
    }
}
