//! POX Autodiscover responses (`protocol::pox::parse_response`): any body a server sends.

mod input;

use autodiscover_exporter::model::pox::PoxResponse;
use autodiscover_exporter::protocol::pox;

fn main() {
    let body = input::text();
    if let Ok(PoxResponse::RedirectUrl { url }) = pox::parse_response(&body) {
        // credentials never survive into what is recorded
        if let Ok(parsed) = url::Url::parse(&url) {
            assert!(parsed.password().is_none(), "{url}");
        }
    }
    let _ = pox::requested_address(&body);
}
