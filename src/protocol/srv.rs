//! How clients use `_autodiscover._tcp.D`: RFC 2782 order, https on 443 only.

use crate::model::facts::{SrvLookup, SrvRecord};
use crate::model::report::SrvSummary;

/// The only port clients use: they build `https://target/...` without a port.
pub const HTTPS_PORT: u16 = 443;

/// Most SRV records a probe uses and exports: a hostile zone can publish thousands, and a
/// client tries them one after another within one step's budget anyway.
pub const MAX_SRV_RECORDS: usize = 16;

/// The SRV owner name of a domain.
pub fn srv_name(domain: &str) -> String {
    format!("_autodiscover._tcp.{domain}")
}

/// Records in the order a client tries them: lowest priority first, then highest weight.
/// (RFC 2782 picks among equal priorities at random, weighted; a monitor needs the same order on
/// every probe, so the heaviest record goes first.)
pub fn ordered(records: &[SrvRecord]) -> Vec<SrvRecord> {
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then_with(|| a.target.cmp(&b.target))
    });
    sorted
}

/// The SRV summary of a report: whether a usable record exists, and the records in the order
/// clients try them (capped).
pub fn summarize(lookup: &SrvLookup) -> SrvSummary {
    SrvSummary {
        present: !usable(&lookup.records).is_empty(),
        records: ordered(&lookup.records)
            .into_iter()
            .take(MAX_SRV_RECORDS)
            .collect(),
    }
}

/// The record says "no service here" (target `.`).
pub fn is_no_service(record: &SrvRecord) -> bool {
    record.target.is_empty() || record.target == "."
}

/// The records a client would use, in order: a real target on port 443.
pub fn usable(records: &[SrvRecord]) -> Vec<SrvRecord> {
    ordered(records)
        .into_iter()
        .filter(|r| !is_no_service(r) && r.port == HTTPS_PORT)
        .take(MAX_SRV_RECORDS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(target: &str, port: u16, priority: u16, weight: u16) -> SrvRecord {
        SrvRecord {
            target: target.into(),
            port,
            priority,
            weight,
        }
    }

    #[test]
    fn lowest_priority_then_heaviest_weight_first() {
        let records = vec![
            rec("c.example", 443, 20, 100),
            rec("b.example", 443, 10, 10),
            rec("a.example", 443, 10, 50),
        ];
        let order: Vec<String> = ordered(&records).into_iter().map(|r| r.target).collect();
        assert_eq!(order, ["a.example", "b.example", "c.example"]);
    }

    #[test]
    fn other_ports_and_dot_targets_are_not_usable() {
        let records = vec![rec("mail.example", 8443, 0, 0), rec(".", 443, 0, 0)];
        assert!(usable(&records).is_empty());
        assert!(is_no_service(&records[1]));
        let records = vec![
            rec("mail.example", 8443, 0, 0),
            rec("ad.example", 443, 5, 0),
        ];
        assert_eq!(usable(&records), vec![rec("ad.example", 443, 5, 0)]);
    }
}
