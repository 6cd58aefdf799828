//! autodiscover-exporter walks the path Outlook walks to find its Exchange server (Microsoft 365,
//! the mail domain, the `autodiscover.` host, the HTTP redirect, the DNS SRV record) and reports what
//! Outlook would do: find its server silently, ask to allow a redirect, show a certificate
//! alert, or find nothing.
//!
//! Layers, lowest first (imports only point down; `cargo test --test architecture` checks it,
//! docs/ARCHITECTURE.md is the map):
//! - [`model`]: the vocabulary as plain data: names, the step table, facts, report, findings.
//! - [`protocol`]: the Autodiscover protocol and the decision logic, pure.
//! - [`diagnose`]: what is wrong and how to fix it.
//! - [`net`]: fact gathering (DNS, TCP, TLS, HTTP).
//! - [`probe`]: one probe, from an address to a [`model::report::ProbeReport`].
//! - [`config`]: the YAML configuration.
//! - [`render`]: the report as a text trace, metrics, HTML.
//! - [`exporter`]: the long-running service.
//! - [`cli`] and [`lab`] (a simulated world of DNS and TLS servers for tests and `demo`).

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
