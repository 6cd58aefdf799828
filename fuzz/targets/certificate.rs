//! Certificate facts (`net::certificate::facts`) of any DER a server presents, and the text
//! the trace prints of them.

mod input;

use autodiscover_exporter::model::text::{escape_controls, is_unsafe};
use autodiscover_exporter::net::certificate;

fn main() {
    let der = input::bytes();
    let facts = certificate::facts(&der, 1_767_225_600);
    assert_eq!(facts.fingerprint_sha256.len(), 64);
    for text in [&facts.subject, &facts.issuer]
        .into_iter()
        .chain(&facts.dns_names)
        .chain(&facts.ca_issuers)
    {
        assert!(!escape_controls(text).chars().any(is_unsafe));
    }
    assert!(facts.ca_issuers.len() <= 4);
}
