//! The first words of IMAP, POP3 and SMTP: the greeting, the capability list and STARTTLS
//! (IMAP `STARTTLS`, POP3 `STLS`, SMTP `EHLO` then `STARTTLS`), over any stream, with a cap on
//! line length and line count and a timeout on every read and write.

use crate::model::settings::DialogueLine;
use crate::model::text::starts_with_ignoring_ascii_case;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest line read (RFC 5321 allows 512 for SMTP replies; IMAP capability lines run longer).
pub const MAX_LINE: usize = 4096;
/// Most lines of one reply (capability lists, multi-line greetings).
pub const MAX_REPLY_LINES: usize = 64;
/// Most dialogue lines kept for the trace.
const MAX_LOGGED: usize = 40;
/// Longest dialogue line kept for the trace.
const MAX_LOGGED_TEXT: usize = 200;
/// The name the probe introduces itself with in `EHLO`.
pub const EHLO_NAME: &str = "autodiscover-exporter.invalid";

/// A mail protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailProtocol {
    /// IMAP4rev1 / IMAP4rev2.
    Imap,
    /// POP3.
    Pop3,
    /// SMTP (submission or relay).
    Smtp,
}

/// Why a dialogue stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialogueFailure {
    /// No (complete) answer in time.
    Timeout,
    /// The server said something the protocol does not allow here, closed the connection, or
    /// sent an over-long line.
    Unexpected(String),
    /// The server does not offer STARTTLS, or refused it.
    StarttlsRefused(String),
}

/// What the plain-text part of a dialogue found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The capability keywords (upper case), when the server listed them.
    pub keywords: Option<Vec<String>>,
}

impl Capabilities {
    /// STARTTLS is advertised (`STARTTLS` for IMAP and SMTP, `STLS` for POP3); `None` when the
    /// server listed no capabilities.
    pub fn starttls(&self, protocol: MailProtocol) -> Option<bool> {
        let wanted = match protocol {
            MailProtocol::Pop3 => "STLS",
            _ => "STARTTLS",
        };
        self.keywords
            .as_ref()
            .map(|k| k.iter().any(|w| w == wanted))
    }
}

/// A stream read line by line, with its dialogue log.
pub struct LineStream<S> {
    stream: S,
    buffer: Vec<u8>,
    timeout: Duration,
    /// The dialogue so far, for the trace.
    pub log: Vec<DialogueLine>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineStream<S> {
    /// Wraps `stream`; every read and write must finish within `timeout`.
    pub fn new(stream: S, timeout: Duration) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
            timeout,
            log: Vec::new(),
        }
    }

    /// The stream, for the TLS handshake after STARTTLS. Bytes the server sent ahead of the
    /// handshake are a protocol violation (and the classic STARTTLS injection): refused.
    pub fn into_inner(
        self,
    ) -> Result<(S, Vec<DialogueLine>), (DialogueFailure, Vec<DialogueLine>)> {
        if self.buffer.is_empty() {
            Ok((self.stream, self.log))
        } else {
            Err((
                DialogueFailure::StarttlsRefused(
                    "the server sent data before the TLS handshake".into(),
                ),
                self.log,
            ))
        }
    }

    /// Reads one line (without its line end).
    pub async fn read_line(&mut self) -> Result<String, DialogueFailure> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let text = String::from_utf8_lossy(&line).into_owned();
                self.record('S', &text);
                return Ok(text);
            }
            if self.buffer.len() > MAX_LINE {
                return Err(DialogueFailure::Unexpected(format!(
                    "a line longer than {MAX_LINE} bytes"
                )));
            }
            let mut chunk = [0u8; 1024];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => return Err(DialogueFailure::Timeout),
                Ok(Err(error)) => {
                    return Err(DialogueFailure::Unexpected(format!("read failed: {error}")));
                }
                Ok(Ok(0)) => {
                    return Err(DialogueFailure::Unexpected(
                        "the server closed the connection".into(),
                    ));
                }
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Writes one command line (CRLF added).
    pub async fn write_line(&mut self, line: &str) -> Result<(), DialogueFailure> {
        self.record('C', line);
        let bytes = format!("{line}\r\n");
        let write = async {
            self.stream.write_all(bytes.as_bytes()).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Err(_) => Err(DialogueFailure::Timeout),
            Ok(Err(error)) => Err(DialogueFailure::Unexpected(format!(
                "write failed: {error}"
            ))),
            Ok(Ok(())) => Ok(()),
        }
    }

    fn record(&mut self, from: char, text: &str) {
        if self.log.len() < MAX_LOGGED {
            let mut text: String = text.chars().take(MAX_LOGGED_TEXT).collect();
            text.retain(|c| !c.is_control());
            self.log.push(DialogueLine { from, text });
        }
    }
}

/// Reads the greeting and asks for the capabilities.
pub async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut LineStream<S>,
    protocol: MailProtocol,
) -> Result<Capabilities, DialogueFailure> {
    match protocol {
        MailProtocol::Imap => imap_greet(lines).await,
        MailProtocol::Pop3 => pop3_greet(lines).await,
        MailProtocol::Smtp => smtp_greet(lines).await,
    }
}

/// Asks for STARTTLS; `Ok` when the server agreed and the TLS handshake may start.
pub async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut LineStream<S>,
    protocol: MailProtocol,
) -> Result<(), DialogueFailure> {
    let refused = |text: String| DialogueFailure::StarttlsRefused(text);
    match protocol {
        MailProtocol::Imap => {
            lines.write_line("a2 STARTTLS").await?;
            let tagged = imap_tagged(lines, "a2").await?;
            if !starts_with_ignoring_ascii_case(&tagged, "a2 OK") {
                return Err(refused(tagged));
            }
        }
        MailProtocol::Pop3 => {
            lines.write_line("STLS").await?;
            let answer = lines.read_line().await?;
            if !answer.starts_with("+OK") {
                return Err(refused(answer));
            }
        }
        MailProtocol::Smtp => {
            lines.write_line("STARTTLS").await?;
            let (code, last, _) = smtp_reply(lines).await?;
            if code != 220 {
                return Err(refused(last));
            }
        }
    }
    Ok(())
}

/// Says goodbye (best effort: the answer is not awaited long).
pub async fn quit<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut LineStream<S>,
    protocol: MailProtocol,
) {
    let command = match protocol {
        MailProtocol::Imap => "a3 LOGOUT",
        MailProtocol::Pop3 | MailProtocol::Smtp => "QUIT",
    };
    if lines.write_line(command).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_millis(500), lines.read_line()).await;
    }
}

async fn imap_greet<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut LineStream<S>,
) -> Result<Capabilities, DialogueFailure> {
    let greeting = lines.read_line().await?;
    if !(starts_with_ignoring_ascii_case(&greeting, "* OK")
        || starts_with_ignoring_ascii_case(&greeting, "* PREAUTH"))
    {
        return Err(DialogueFailure::Unexpected(greeting));
    }
    lines.write_line("a1 CAPABILITY").await?;
    let mut keywords = Vec::new();
    for _ in 0..MAX_REPLY_LINES {
        let line = lines.read_line().await?;
        if starts_with_ignoring_ascii_case(&line, "* CAPABILITY ") {
            keywords.extend(line[13..].split_whitespace().map(str::to_ascii_uppercase));
        } else if starts_with_ignoring_ascii_case(&line, "a1 ") {
            if !starts_with_ignoring_ascii_case(&line, "a1 OK") {
                return Err(DialogueFailure::Unexpected(line));
            }
            return Ok(Capabilities {
                keywords: Some(keywords),
            });
        }
    }
    Err(DialogueFailure::Unexpected(format!(
        "more than {MAX_REPLY_LINES} lines in the CAPABILITY answer"
    )))
}

async fn imap_tagged<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut LineStream<S>,
    tag: &str,
) -> Result<String, DialogueFailure> {
    for _ in 0..MAX_REPLY_LINES {
        let line = lines.read_line().await?;
        if starts_with_ignoring_ascii_case(&line, &format!("{tag} ")) {
            return Ok(line);
        }
    }
    Err(DialogueFailure::Unexpected(format!(
        "no tagged answer in {MAX_REPLY_LINES} lines"
    )))
}

async fn pop3_greet<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut LineStream<S>,
) -> Result<Capabilities, DialogueFailure> {
    let greeting = lines.read_line().await?;
    if !greeting.starts_with("+OK") {
        return Err(DialogueFailure::Unexpected(greeting));
    }
    lines.write_line("CAPA").await?;
    let answer = lines.read_line().await?;
    if !answer.starts_with("+OK") {
        // CAPA is optional (RFC 2449): the capabilities are unknown, not wrong.
        return Ok(Capabilities { keywords: None });
    }
    let mut keywords = Vec::new();
    for _ in 0..MAX_REPLY_LINES {
        let line = lines.read_line().await?;
        if line == "." {
            return Ok(Capabilities {
                keywords: Some(keywords),
            });
        }
        if let Some(word) = line.split_whitespace().next() {
            keywords.push(word.to_ascii_uppercase());
        }
    }
    Err(DialogueFailure::Unexpected(format!(
        "more than {MAX_REPLY_LINES} lines in the CAPA answer"
    )))
}

async fn smtp_greet<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut LineStream<S>,
) -> Result<Capabilities, DialogueFailure> {
    let (code, last, _) = smtp_reply(lines).await?;
    if code != 220 {
        return Err(DialogueFailure::Unexpected(last));
    }
    lines.write_line(&format!("EHLO {EHLO_NAME}")).await?;
    let (code, last, replies) = smtp_reply(lines).await?;
    if code != 250 {
        return Err(DialogueFailure::Unexpected(last));
    }
    // The first line names the server; the others are the extensions.
    let keywords = replies
        .iter()
        .skip(1)
        .filter_map(|text| text.split_whitespace().next())
        .map(str::to_ascii_uppercase)
        .collect();
    Ok(Capabilities {
        keywords: Some(keywords),
    })
}

/// Reads one (possibly multi-line) SMTP reply: its code, its last line and the text of each
/// line.
async fn smtp_reply<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut LineStream<S>,
) -> Result<(u16, String, Vec<String>), DialogueFailure> {
    let mut texts = Vec::new();
    for _ in 0..MAX_REPLY_LINES {
        let line = lines.read_line().await?;
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| DialogueFailure::Unexpected(line.clone()))?;
        let separator = line.as_bytes().get(3).copied();
        texts.push(line.get(4..).unwrap_or("").to_owned());
        match separator {
            Some(b'-') => continue,
            Some(b' ') | None => return Ok((code, line, texts)),
            Some(_) => return Err(DialogueFailure::Unexpected(line)),
        }
    }
    Err(DialogueFailure::Unexpected(format!(
        "more than {MAX_REPLY_LINES} lines in one SMTP reply"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

    /// A scripted server: for each line the client sends, the next canned answer.
    async fn scripted(
        greeting: &'static str,
        answers: Vec<&'static str>,
    ) -> tokio::io::DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(server);
            let mut read = BufReader::new(read);
            let _ = write.write_all(greeting.as_bytes()).await;
            for answer in answers {
                let mut line = String::new();
                if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let _ = write.write_all(answer.as_bytes()).await;
            }
        });
        client
    }

    fn lines(stream: tokio::io::DuplexStream) -> LineStream<tokio::io::DuplexStream> {
        LineStream::new(stream, Duration::from_secs(2))
    }

    #[tokio::test]
    async fn imap_starttls_dialogue() {
        let stream = scripted(
            "* OK [CAPABILITY IMAP4rev1] ready\r\n",
            vec![
                "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na1 OK done\r\n",
                "a2 OK Begin TLS negotiation now\r\n",
            ],
        )
        .await;
        let mut l = lines(stream);
        let caps = greet(&mut l, MailProtocol::Imap).await.unwrap();
        assert_eq!(caps.starttls(MailProtocol::Imap), Some(true));
        starttls(&mut l, MailProtocol::Imap).await.unwrap();
        let (_, log) = l.into_inner().unwrap();
        assert_eq!(log[0].from, 'S');
        assert_eq!(log[1].text, "a1 CAPABILITY");
    }

    #[tokio::test]
    async fn pop3_and_smtp_dialogues() {
        let stream = scripted(
            "+OK POP3 ready\r\n",
            vec!["+OK\r\nUSER\r\nSTLS\r\n.\r\n", "+OK begin TLS\r\n"],
        )
        .await;
        let mut l = lines(stream);
        let caps = greet(&mut l, MailProtocol::Pop3).await.unwrap();
        assert_eq!(caps.starttls(MailProtocol::Pop3), Some(true));
        starttls(&mut l, MailProtocol::Pop3).await.unwrap();

        let stream = scripted(
            "220-mail.example ESMTP\r\n220 welcome\r\n",
            vec![
                "250-mail.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
                "220 2.0.0 Ready to start TLS\r\n",
            ],
        )
        .await;
        let mut l = lines(stream);
        let caps = greet(&mut l, MailProtocol::Smtp).await.unwrap();
        assert_eq!(
            caps.keywords.as_deref(),
            Some(
                &[
                    "PIPELINING".to_owned(),
                    "STARTTLS".into(),
                    "8BITMIME".into()
                ][..]
            )
        );
        starttls(&mut l, MailProtocol::Smtp).await.unwrap();
    }

    #[tokio::test]
    async fn wrong_greetings_refusals_and_silence() {
        let stream = scripted("554 go away\r\n", vec![]).await;
        assert!(matches!(
            greet(&mut lines(stream), MailProtocol::Smtp).await,
            Err(DialogueFailure::Unexpected(_))
        ));
        let stream = scripted("HTTP/1.1 400 Bad Request\r\n", vec![]).await;
        assert!(matches!(
            greet(&mut lines(stream), MailProtocol::Imap).await,
            Err(DialogueFailure::Unexpected(_))
        ));
        let stream = scripted(
            "220 mx\r\n",
            vec!["250 mx\r\n", "454 TLS not available\r\n"],
        )
        .await;
        let mut l = lines(stream);
        let caps = greet(&mut l, MailProtocol::Smtp).await.unwrap();
        assert_eq!(caps.starttls(MailProtocol::Smtp), Some(false));
        assert!(matches!(
            starttls(&mut l, MailProtocol::Smtp).await,
            Err(DialogueFailure::StarttlsRefused(_))
        ));
        // a server that never speaks
        let (client, _server) = tokio::io::duplex(1024);
        let mut l = LineStream::new(client, Duration::from_millis(100));
        assert_eq!(
            greet(&mut l, MailProtocol::Pop3).await,
            Err(DialogueFailure::Timeout)
        );
        // an endless line
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let _ = server.write_all(&[b'x'; 10_000]).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let mut l = LineStream::new(client, Duration::from_secs(2));
        assert!(matches!(
            l.read_line().await,
            Err(DialogueFailure::Unexpected(text)) if text.contains("longer than")
        ));
    }

    #[tokio::test]
    async fn data_ahead_of_the_handshake_is_refused() {
        let stream = scripted(
            "* OK ready\r\n",
            vec![
                "* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK\r\n",
                "a2 OK go\r\n* injected\r\n",
            ],
        )
        .await;
        let mut l = lines(stream);
        greet(&mut l, MailProtocol::Imap).await.unwrap();
        starttls(&mut l, MailProtocol::Imap).await.unwrap();
        // the injected line came in the same write as the OK, so it is buffered
        assert!(l.into_inner().is_err());
    }
}
