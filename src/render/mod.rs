//! Renderers: a `ProbeReport` as a text trace, Prometheus metrics, HTML.

pub mod gzip;
pub mod html;
pub mod metrics;
pub mod trace;
