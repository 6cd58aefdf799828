//! `--log.format logfmt`: one `ts=... level=... msg="..." key=value` line per event, as the
//! Prometheus ecosystem logs. Also what both log formats share: text from outside is escaped
//! (`model::text`), and identical warnings are logged at most once a minute.

use crate::model::text::{is_unsafe, push_escaped};
use std::collections::HashMap;
use std::fmt::{self, Write};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The logfmt event formatter.
pub(super) struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = format!(
            "ts={} level={}",
            timestamp(),
            event.metadata().level().as_str().to_ascii_lowercase()
        );
        let mut visitor = Fields {
            line: &mut line,
            message: None,
        };
        event.record(&mut visitor);
        if let Some(message) = visitor.message.take() {
            // the message goes right after the level, like Prometheus's own logs
            let at = line.find(" level=").map_or(line.len(), |i| {
                line[i + 1..].find(' ').map_or(line.len(), |j| i + 1 + j)
            });
            line.insert_str(at, &format!(" msg={}", quote(&message)));
        }
        writeln!(writer, "{line}")
    }
}

struct Fields<'a> {
    line: &'a mut String,
    message: Option<String>,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields<'_> {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            let _ = write!(self.line, " {}={}", field.name(), quote(&value));
        }
    }
}

fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && c != '"' && c != '=' && !is_unsafe(c));
    if plain {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => push_escaped(&mut out, c),
        }
    }
    out.push('"');
    out
}

/// Writes JSON log lines with the non-ASCII characters a terminal obeys (C1 controls, bidi
/// overrides, line separators) as `\uXXXX` escapes; serde_json escapes only ASCII controls.
/// They can only occur inside JSON strings, so the line stays valid JSON.
pub(super) struct EscapingWriter<W>(pub(super) W);

impl<W: std::io::Write> std::io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Ok(text) = std::str::from_utf8(buf) else {
            return self.0.write(buf);
        };
        if !text.chars().any(|c| !c.is_ascii() && is_unsafe(c)) {
            return self.0.write(buf);
        }
        let mut out = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if !c.is_ascii() && is_unsafe(c) {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        self.0.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// How long an identical warning is not repeated.
const REPEAT_WINDOW: Duration = Duration::from_secs(60);
/// Most distinct warnings remembered.
const REPEAT_MEMORY: usize = 1024;

/// Drops a warning or error identical (same place, same fields) to one logged less than
/// [`REPEAT_WINDOW`] ago: a failing `accept` or a hostile server must not flood the log.
#[derive(Default)]
pub(super) struct RepeatLimit {
    seen: Mutex<HashMap<String, Instant>>,
}

impl<S: Subscriber> Layer<S> for RepeatLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() > Level::WARN {
            return true;
        }
        let mut key = format!("{}:{}", metadata.target(), metadata.name());
        let mut fields = Fields {
            line: &mut key,
            message: None,
        };
        event.record(&mut fields);
        if let Some(message) = fields.message.take() {
            key.push_str(&message);
        }
        self.admit(key, Instant::now())
    }
}

impl RepeatLimit {
    fn admit(&self, key: String, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = seen.get(&key)
            && now.duration_since(*last) < REPEAT_WINDOW
        {
            return false;
        }
        if seen.len() >= REPEAT_MEMORY {
            seen.retain(|_, last| now.duration_since(*last) < REPEAT_WINDOW);
            if seen.len() >= REPEAT_MEMORY {
                seen.clear();
            }
        }
        seen.insert(key, now);
        true
    }
}

fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a=\"b\"\n"), "\"a=\\\"b\\\"\\n\"");
        assert_eq!(
            quote("CN=x\u{1b}[2J\u{7}\u{202e}"),
            "\"CN=x\\u{1b}[2J\\u{7}\\u{202e}\""
        );
    }

    #[test]
    fn json_lines_escape_what_serde_json_leaves() {
        use std::io::Write as _;
        let mut writer = EscapingWriter(Vec::new());
        writer
            .write_all("{\"msg\":\"a\u{9b}31m\u{202e}b é\"}\n".as_bytes())
            .unwrap();
        let line = String::from_utf8(writer.0).unwrap();
        assert_eq!(line, "{\"msg\":\"a\\u009b31m\\u202eb é\"}\n");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["msg"], "a\u{9b}31m\u{202e}b é");
    }

    #[test]
    fn identical_warnings_are_logged_once_a_minute() {
        let limit = RepeatLimit::default();
        let start = Instant::now();
        assert!(limit.admit("accept failed: EMFILE".into(), start));
        assert!(!limit.admit(
            "accept failed: EMFILE".into(),
            start + Duration::from_secs(1)
        ));
        assert!(limit.admit("other".into(), start + Duration::from_secs(1)));
        assert!(limit.admit(
            "accept failed: EMFILE".into(),
            start + REPEAT_WINDOW + Duration::from_secs(1)
        ));
    }
}
