//! autodiscover-exporter walks the path Outlook walks to find its Exchange server (the mail
//! domain, the `autodiscover.` host, the HTTP redirect, the DNS SRV record) and reports what
//! Outlook would do: find its server silently, ask to allow a redirect, show a certificate
//! alert, or find nothing.
//!
//! Layout:
//! - [`autodiscover`]: the protocol and the decision logic, pure.
//! - [`net`]: fact gathering (DNS, TCP, TLS, HTTP).
//! - [`probe`]: one probe, from an address to a [`report::ProbeReport`].
//! - [`findings`]: what is wrong and how to fix it.
//! - [`config`]: the YAML configuration.
//! - [`render`]: the report as a text trace, metrics, HTML.
//! - [`lab`]: a simulated world of DNS and TLS servers for tests and `demo`.

pub mod cli;
pub mod config;
pub mod diagnose;
pub mod exporter;
pub mod lab;
pub mod model;
pub mod net;
pub mod probe;
pub mod protocol;
pub mod render;
