//! What every target shares: the input afl-fuzz writes to standard input.

use std::io::Read;

/// The whole input, at most 1 MiB.
pub fn bytes() -> Vec<u8> {
    let mut input = Vec::new();
    let _ = std::io::stdin().take(1 << 20).read_to_end(&mut input);
    input
}

/// The input as text (invalid UTF-8 replaced, as the exporter does with bodies).
#[allow(dead_code)] // not every target reads text
pub fn text() -> String {
    String::from_utf8_lossy(&bytes()).into_owned()
}
