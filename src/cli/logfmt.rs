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
/// Most warnings one place in a library logs per [`REPEAT_WINDOW`], whatever their fields: a
/// library that warns once per packet with the packet's details in a field (hickory-resolver
/// did so for every DNS answer with a wrong ID) would write a line for each of the thousands
/// of packets a hostile server sends.
const LIBRARY_PLACE_BUDGET: u32 = 10;

/// Drops a warning or error identical (same place, same fields) to one logged less than
/// [`REPEAT_WINDOW`] ago, and a library's warnings past [`LIBRARY_PLACE_BUDGET`] per place and
/// window: a failing `accept` or a hostile server must not flood the log. This crate's own
/// warnings are only deduplicated: their fields are bounded and each one matters (a warning per
/// misconfigured domain).
#[derive(Default)]
pub(super) struct RepeatLimit {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// When each distinct warning was last logged.
    identical: HashMap<String, Instant>,
    /// Per library place: when its window started and how many it logged in it.
    places: HashMap<String, (Instant, u32)>,
}

impl<S: Subscriber> Layer<S> for RepeatLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() > Level::WARN {
            return true;
        }
        let place = format!("{}:{}", metadata.target(), metadata.name());
        let mut key = place.clone();
        let mut fields = Fields {
            line: &mut key,
            message: None,
        };
        event.record(&mut fields);
        if let Some(message) = fields.message.take() {
            key.push_str(&message);
        }
        let library = !is_own_target(metadata.target());
        self.admit(key, library.then_some(place.as_str()), Instant::now())
    }
}

/// Events of this crate (their target is a module path of it).
fn is_own_target(target: &str) -> bool {
    let own = env!("CARGO_CRATE_NAME");
    target == own
        || target
            .strip_prefix(own)
            .is_some_and(|rest| rest.starts_with("::"))
}

impl RepeatLimit {
    /// Whether to log the warning `key`; `budgeted` names its place when the place's budget
    /// applies.
    fn admit(&self, key: String, budgeted: Option<&str>, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = seen.identical.get(&key)
            && now.duration_since(*last) < REPEAT_WINDOW
        {
            return false;
        }
        if let Some(place) = budgeted {
            if seen.places.len() >= REPEAT_MEMORY && !seen.places.contains_key(place) {
                seen.places
                    .retain(|_, (start, _)| now.duration_since(*start) < REPEAT_WINDOW);
                if seen.places.len() >= REPEAT_MEMORY {
                    seen.places.clear();
                }
            }
            let (start, count) = seen.places.entry(place.to_owned()).or_insert((now, 0));
            if now.duration_since(*start) >= REPEAT_WINDOW {
                (*start, *count) = (now, 0);
            }
            if *count >= LIBRARY_PLACE_BUDGET {
                return false;
            }
            *count += 1;
        }
        if seen.identical.len() >= REPEAT_MEMORY {
            seen.identical
                .retain(|_, last| now.duration_since(*last) < REPEAT_WINDOW);
            if seen.identical.len() >= REPEAT_MEMORY {
                seen.identical.clear();
            }
        }
        seen.identical.insert(key, now);
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
        assert!(limit.admit("accept failed: EMFILE".into(), None, start));
        assert!(!limit.admit(
            "accept failed: EMFILE".into(),
            None,
            start + Duration::from_secs(1)
        ));
        assert!(limit.admit("other".into(), None, start + Duration::from_secs(1)));
        assert!(limit.admit(
            "accept failed: EMFILE".into(),
            None,
            start + REPEAT_WINDOW + Duration::from_secs(1)
        ));
    }

    #[test]
    fn a_librarys_warnings_from_one_place_are_bounded_whatever_their_fields() {
        let limit = RepeatLimit::default();
        let start = Instant::now();
        let place = "hickory_net::udp:event udp_client_stream.rs:1";
        let admitted = (0..1000u64)
            .filter(|id| {
                let now = start + Duration::from_millis(*id);
                limit.admit(format!("{place} received_id={id}"), Some(place), now)
            })
            .count();
        assert_eq!(admitted, LIBRARY_PLACE_BUDGET as usize);
        assert!(limit.admit("another".into(), Some("another place"), start));
        let later = start + REPEAT_WINDOW + Duration::from_secs(2);
        assert!(limit.admit(format!("{place} received_id=5000"), Some(place), later));
        // This crate's own warnings differing in a field are all logged.
        let own = (0..100)
            .filter(|n| limit.admit(format!("odd configuration domain={n}"), None, start))
            .count();
        assert_eq!(own, 100);
    }

    /// Through the subscriber, as `init_logging` stacks it: a flood of one library warning with
    /// ever-changing fields (hickory-resolver's wrong-ID answers) reaches the log a bounded number
    /// of times.
    #[test]
    fn a_flood_of_library_warnings_reaches_the_log_a_bounded_number_of_times() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tracing_subscriber::layer::SubscriberExt;

        struct Count(Arc<AtomicUsize>);
        impl<S: Subscriber> Layer<S> for Count {
            fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let logged = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(RepeatLimit::default())
            .with(Count(logged.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for id in 0..1000u32 {
                tracing::warn!(
                    target: "hickory_net::udp::udp_client_stream",
                    expected_id = 7u32,
                    received_id = id,
                    "ignoring response with wrong message id"
                );
            }
            for n in 0..20u32 {
                tracing::warn!(domain = n, "odd configuration");
            }
        });
        assert_eq!(
            logged.load(Ordering::SeqCst),
            LIBRARY_PLACE_BUDGET as usize + 20
        );
    }

    #[test]
    fn own_targets_are_this_crates_modules() {
        assert!(is_own_target("autodiscover_exporter"));
        assert!(is_own_target("autodiscover_exporter::exporter::web"));
        assert!(!is_own_target("autodiscover_exporter_fork::x"));
        assert!(!is_own_target("hickory_proto::udp"));
    }
}
