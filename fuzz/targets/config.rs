//! The configuration loader (`Config::parse`): errors, never panics; what loads is in bounds.

mod input;

use autodiscover_exporter::config::{self, Config};

fn main() {
    let text = input::text();
    if let Ok(config) = Config::parse(&text) {
        let d = &config.defaults;
        assert!((config::MIN_INTERVAL..=config::MAX_INTERVAL).contains(&d.interval));
        assert!(d.phase_timeout <= d.step_timeout && d.step_timeout <= d.timeout);
        assert!(d.timeout <= config::MAX_TIMEOUT);
        for domain in &config.domains {
            assert!((config::MIN_INTERVAL..=config::MAX_INTERVAL).contains(&domain.interval));
        }
    }
}
