//! Label names the exporter's own series carry. A domain's configured `labels` cannot use them
//! (config refuses them), and the metrics renderer writes no other (it asserts so in tests).

/// Every label name the exporter sets itself, plus the ones Prometheus adds at scrape time.
pub const RESERVED_LABELS: &[&str] = &[
    "domain",
    "step",
    "status",
    "outcome",
    "host",
    "url",
    "target",
    "port",
    "priority",
    "weight",
    "subject",
    "issuer",
    "serial",
    "fingerprint_sha256",
    "service",
    "protocol",
    "nameservers",
    "job",
    "instance",
];
