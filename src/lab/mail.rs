//! Simulated IMAP, POP3 and SMTP servers: just enough of each protocol for a client to read the
//! greeting and the capabilities and to upgrade with STARTTLS (real TLS through tokio-rustls),
//! or to speak TLS from the first byte on implicit-TLS ports.

use super::pki::ServerIdentity;
use crate::net::mail::{LineStream, MailProtocol};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How a simulated mail server behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailBehaviour {
    /// Which protocol.
    pub protocol: MailProtocol,
    /// TLS from the first byte (993, 995, 465); otherwise plain text with STARTTLS.
    pub implicit_tls: bool,
    /// Advertise and accept STARTTLS (plain-text ports).
    pub starttls: bool,
    /// Misbehave this way, if at all.
    pub fault: Option<MailFault>,
}

/// How a simulated mail server misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailFault {
    /// Accept the connection and never say anything (not even TLS).
    Silent,
    /// Greet with a refusal (`554`, `* BYE`, `-ERR`) and close.
    RejectGreeting,
}

/// What a plain-text session ended with.
enum Ended<S> {
    /// The client asked for STARTTLS and the server agreed: the handshake comes next.
    Upgrade(S),
    /// The session is over.
    Done,
}

/// Serves `behaviour` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    identity: ServerIdentity,
    behaviour: MailBehaviour,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(acceptor) = acceptor(identity) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let session = async {
                if behaviour.fault == Some(MailFault::Silent) {
                    let _keep_open = tcp;
                    std::future::pending::<()>().await;
                    return;
                }
                if behaviour.implicit_tls {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = session(tls, behaviour, true).await;
                    }
                    return;
                }
                if let Ended::Upgrade(tcp) = session(tcp, behaviour, false).await
                    && let Ok(tls) = acceptor.accept(tcp).await
                {
                    let _ = session(tls, behaviour, true).await;
                }
            };
            tokio::select! {
                () = session => {}
                _ = stop.changed() => {}
            }
        });
    }
}

fn acceptor(identity: ServerIdentity) -> Result<TlsAcceptor, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One session: the greeting (not after STARTTLS), then commands until QUIT or STARTTLS.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    behaviour: MailBehaviour,
    secure: bool,
) -> Ended<S> {
    let mut lines = LineStream::new(stream, Duration::from_secs(10));
    let offer = behaviour.starttls && !secure;
    let greeting = match behaviour.protocol {
        MailProtocol::Imap => "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] lab IMAP ready",
        MailProtocol::Pop3 => "+OK lab POP3 ready",
        MailProtocol::Smtp => "220 mail.lab.example ESMTP lab",
    };
    if behaviour.fault == Some(MailFault::RejectGreeting) {
        let refusal = match behaviour.protocol {
            MailProtocol::Imap => "* BYE too many connections",
            MailProtocol::Pop3 => "-ERR service unavailable",
            MailProtocol::Smtp => "554 5.7.1 no service here",
        };
        let _ = lines.write_line(refusal).await;
        return Ended::Done;
    }
    // After STARTTLS the dialogue goes on without a new greeting.
    let upgraded = secure && !behaviour.implicit_tls;
    if !upgraded && lines.write_line(greeting).await.is_err() {
        return Ended::Done;
    }
    for _ in 0..32 {
        let Ok(line) = lines.read_line().await else {
            return Ended::Done;
        };
        let (tag, command) = match behaviour.protocol {
            MailProtocol::Imap => line.split_once(' ').unwrap_or((line.as_str(), "")),
            _ => ("", line.as_str()),
        };
        let command = command.trim().to_ascii_uppercase();
        let verb = command.split_whitespace().next().unwrap_or("").to_owned();
        let mut replies: Vec<String> = Vec::new();
        let mut upgrade = false;
        let mut done = false;
        match (behaviour.protocol, verb.as_str()) {
            (MailProtocol::Imap, "CAPABILITY") => {
                let starttls = if offer { " STARTTLS" } else { "" };
                replies.push(format!("* CAPABILITY IMAP4rev1{starttls} AUTH=PLAIN"));
                replies.push(format!("{tag} OK CAPABILITY completed"));
            }
            (MailProtocol::Imap, "STARTTLS") if offer => {
                replies.push(format!("{tag} OK Begin TLS negotiation now"));
                upgrade = true;
            }
            (MailProtocol::Imap, "LOGOUT") => {
                replies.push("* BYE logging out".into());
                replies.push(format!("{tag} OK LOGOUT completed"));
                done = true;
            }
            (MailProtocol::Imap, _) => replies.push(format!("{tag} BAD unknown command")),
            (MailProtocol::Pop3, "CAPA") => {
                replies.push("+OK capability list follows".into());
                replies.push("USER".into());
                if offer {
                    replies.push("STLS".into());
                }
                replies.push(".".into());
            }
            (MailProtocol::Pop3, "STLS") if offer => {
                replies.push("+OK begin TLS negotiation".into());
                upgrade = true;
            }
            (MailProtocol::Pop3, "QUIT") => {
                replies.push("+OK bye".into());
                done = true;
            }
            (MailProtocol::Pop3, _) => replies.push("-ERR unknown command".into()),
            (MailProtocol::Smtp, "EHLO") => {
                replies.push("250-mail.lab.example".into());
                replies.push("250-PIPELINING".into());
                if offer {
                    replies.push("250-STARTTLS".into());
                }
                replies.push("250 8BITMIME".into());
            }
            (MailProtocol::Smtp, "STARTTLS") if offer => {
                replies.push("220 2.0.0 Ready to start TLS".into());
                upgrade = true;
            }
            (MailProtocol::Smtp, "QUIT") => {
                replies.push("221 2.0.0 Bye".into());
                done = true;
            }
            (MailProtocol::Smtp, _) => replies.push("502 5.5.2 command not recognised".into()),
        }
        for reply in &replies {
            if lines.write_line(reply).await.is_err() {
                return Ended::Done;
            }
        }
        if upgrade {
            return match lines.into_inner() {
                Ok((stream, _)) => Ended::Upgrade(stream),
                Err(_) => Ended::Done,
            };
        }
        if done {
            return Ended::Done;
        }
    }
    Ended::Done
}
