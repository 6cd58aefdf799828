//! The socket seam: everything above a TCP connection is production code in tests too.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use tokio::net::TcpStream;

/// Opens TCP connections to `address:port`.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `address` (the address DNS returned and the port the client uses).
    fn connect(
        &self,
        address: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send + '_>>;
}

/// The error is this machine's, not the remote side's: out of file descriptors (EMFILE,
/// ENFILE), buffer space or memory (ENOBUFS, ENOMEM), or local ports (EADDRNOTAVAIL).
pub fn is_local_resource_error(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

/// Connections the whole process keeps open for probes at most: `wanted`, or a quarter of the
/// soft file descriptor limit when that is lower (another quarter is the web server's, the rest
/// is for DNS sockets and files).
pub fn process_connection_limit(wanted: usize) -> usize {
    quarter_of_fd_limit(wanted)
}

/// Connections the exporter's web server keeps open at most: `wanted`, or a quarter of the soft
/// file descriptor limit when that is lower, so that clients holding connections (2,000
/// `/probe` requests waiting for a slot) can never take the descriptors the probes need.
pub fn web_connection_limit(wanted: usize) -> usize {
    quarter_of_fd_limit(wanted)
}

fn quarter_of_fd_limit(wanted: usize) -> usize {
    match soft_fd_limit() {
        Some(limit) => wanted.min(limit / 4).max(1),
        None => wanted,
    }
}

/// The soft `RLIMIT_NOFILE` from `/proc/self/limits` (Linux); `None` when unknown or unlimited.
fn soft_fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Connects to the address itself: the production connector.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectConnector;

impl Connector for DirectConnector {
    fn connect(
        &self,
        address: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send + '_>> {
        Box::pin(TcpStream::connect(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_resource_errors_are_told_apart() {
        for code in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::EADDRNOTAVAIL,
        ] {
            assert!(is_local_resource_error(&io::Error::from_raw_os_error(code)));
        }
        for code in [libc::ECONNREFUSED, libc::ENETUNREACH, libc::EHOSTUNREACH] {
            assert!(!is_local_resource_error(&io::Error::from_raw_os_error(
                code
            )));
        }
        assert!(!is_local_resource_error(&io::Error::other("x")));
        assert!(process_connection_limit(256) >= 1);
        assert!(web_connection_limit(4096) >= 1);
    }
}
