//! Microsoft 365's JSON answers (`protocol::microsoft365::parse_answer`).

mod input;

use autodiscover_exporter::model::facts::Microsoft365Json;
use autodiscover_exporter::protocol::microsoft365;

fn main() {
    let body = input::text();
    match microsoft365::parse_answer(&body) {
        Microsoft365Json::Endpoint { url } => assert!(url.chars().count() <= 2048),
        Microsoft365Json::Error { code, message } => {
            assert!(code.chars().count() <= 2048 && message.chars().count() <= 2048);
        }
        Microsoft365Json::Other { .. } => {}
    }
}
