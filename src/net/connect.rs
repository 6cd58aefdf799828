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
