//! The history of changes on disk: SQLite (WAL, `synchronous=FULL`), one writer thread fed by
//! a bounded channel, so the async workers never wait on the disk.
//!
//! Tables: `events` (one row per change) and `domains` (what each domain looked like after its
//! latest probe, so the first probe after a restart is compared with the last one before it).
//! The schema version is SQLite's `user_version`; [`MIGRATIONS`] brings older files forward.

use crate::model::history::{Change, ChangeKind, DomainMemory};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Schema migrations; migration `i` brings `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the changes.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        domain TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        before TEXT NOT NULL,
        after TEXT NOT NULL
    );
    CREATE INDEX events_by_domain ON events(domain, id);
    CREATE INDEX events_by_time ON events(at);",
    // 2: each domain's latest state, so a restart does not lose the baseline.
    "CREATE TABLE domains (
        domain TEXT PRIMARY KEY,
        updated_at INTEGER NOT NULL,
        memory TEXT NOT NULL
    ) WITHOUT ROWID;",
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Changes kept in memory per domain and returned with `/domains/D`.
pub const TIMELINE_LENGTH: usize = 100;

/// Finished probes waiting for the writer; a full queue makes probes wait, not drop changes.
const QUEUE: usize = 1024;

/// Why the history cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The directory of the file does not exist.
    #[error("history {path}: the directory {dir} does not exist (create it or set storage.path)")]
    MissingDirectory {
        /// The file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// The file exists but is not an SQLite database (or is damaged).
    #[error(
        "history {path}: not a usable SQLite database ({reason}); move it away to start a new history"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// SQLite's words.
        reason: String,
    },
    /// The file cannot be written.
    #[error("history {path}: cannot write ({reason})")]
    ReadOnly {
        /// The file.
        path: PathBuf,
        /// SQLite's words.
        reason: String,
    },
    /// A newer exporter wrote the file.
    #[error(
        "history {path}: schema version {found} is newer than this exporter's {SCHEMA_VERSION}"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: usize,
    },
    /// Any other SQLite failure.
    #[error("history {path}: {source}")]
    Sql {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

/// The history database: one connection.
pub struct HistoryDb {
    conn: Connection,
    path: PathBuf,
    retention: Duration,
    max_events: usize,
}

impl std::fmt::Debug for HistoryDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryDb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What one finished probe adds to the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The domain (A-label form, as stored).
    pub domain: String,
    /// Its memory after the probe.
    pub memory: DomainMemory,
    /// The changes the probe revealed.
    pub changes: Vec<Change>,
}

impl HistoryDb {
    /// Opens (creating if needed) and migrates the file at `path`. `:memory:` is a private
    /// in-memory database (tests, `demo`).
    pub fn open(path: &Path, retention: Duration, max_events: usize) -> Result<Self, HistoryError> {
        let in_memory = path.as_os_str() == ":memory:";
        if !in_memory {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                _ => PathBuf::from("."),
            };
            if !dir.is_dir() {
                return Err(HistoryError::MissingDirectory {
                    path: path.to_owned(),
                    dir,
                });
            }
        }
        let sql = |source| HistoryError::Sql {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, e))?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql)?;
        let mut db = Self {
            conn,
            path: path.to_owned(),
            retention,
            max_events: max_events.max(1),
        };
        // Reading the schema is the first thing that fails on a file that is not a database.
        db.conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| classify(path, e))?;
        if !in_memory {
            let mode: String = db
                .conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .map_err(|e| classify(path, e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(HistoryError::ReadOnly {
                    path: path.to_owned(),
                    reason: format!("journal mode stays {mode}, WAL needs a writable directory"),
                });
            }
        }
        // FULL: a committed change survives a crash of the process and of the machine.
        db.conn
            .execute_batch("PRAGMA synchronous=FULL;")
            .map_err(|e| classify(path, e))?;
        db.check_writable()?;
        db.migrate()?;
        Ok(db)
    }

    /// Fails when the database cannot be written (read-only file, directory or mount).
    pub fn check_writable(&self) -> Result<(), HistoryError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS write_check(x); DROP TABLE write_check; COMMIT;")
            .map_err(|e| {
                let _ = self.conn.execute_batch("ROLLBACK;");
                match classify(&self.path, e) {
                    HistoryError::Sql { path, source } => HistoryError::ReadOnly {
                        path,
                        reason: source.to_string(),
                    },
                    other => other,
                }
            })
    }

    /// The schema version of the file.
    pub fn schema_version(&self) -> Result<usize, HistoryError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map(|v| usize::try_from(v).unwrap_or(usize::MAX))
            .map_err(|e| self.sql(e))
    }

    fn migrate(&mut self) -> Result<(), HistoryError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(HistoryError::NewerSchema {
                path: self.path.clone(),
                found,
            });
        }
        self.migrate_to(SCHEMA_VERSION)
    }

    /// Applies the migrations up to `version` (tests use it to build old files).
    fn migrate_to(&mut self, version: usize) -> Result<(), HistoryError> {
        let found = self.schema_version()?;
        for (index, migration) in MIGRATIONS.iter().enumerate().take(version).skip(found) {
            let tx = self
                .conn
                .transaction()
                .map_err(|e| sql_error(&self.path, e))?;
            tx.execute_batch(migration)
                .and_then(|()| tx.pragma_update(None, "user_version", (index + 1) as i64))
                .and_then(|()| tx.commit())
                .map_err(|e| sql_error(&self.path, e))?;
            tracing::info!(path = %self.path.display(), version = index + 1, "history schema migrated");
        }
        Ok(())
    }

    /// Writes the entries of several probes in one transaction, then bounds each domain.
    pub fn write(&mut self, entries: &[Entry]) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let max_events = i64::try_from(self.max_events).unwrap_or(i64::MAX);
        let tx = self.conn.transaction().map_err(|e| sql_error(&path, e))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (domain, at, kind, subject, before, after)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(|e| sql_error(&path, e))?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO domains (domain, updated_at, memory) VALUES (?1, ?2, ?3)
                     ON CONFLICT(domain) DO UPDATE SET updated_at = ?2, memory = ?3",
                )
                .map_err(|e| sql_error(&path, e))?;
            let mut bound = tx
                .prepare_cached(
                    "DELETE FROM events WHERE domain = ?1 AND id <= (
                        SELECT id FROM events WHERE domain = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                )
                .map_err(|e| sql_error(&path, e))?;
            for entry in entries {
                for change in &entry.changes {
                    insert
                        .execute(params![
                            entry.domain,
                            change.at,
                            change.kind.as_str(),
                            change.subject,
                            change.before,
                            change.after
                        ])
                        .map_err(|e| sql_error(&path, e))?;
                }
                let memory = serde_json::to_string(&entry.memory).unwrap_or_default();
                let updated = entry.changes.last().map_or_else(now, |c| c.at);
                upsert
                    .execute(params![entry.domain, updated, memory])
                    .map_err(|e| sql_error(&path, e))?;
                if !entry.changes.is_empty() {
                    bound
                        .execute(params![entry.domain, max_events])
                        .map_err(|e| sql_error(&path, e))?;
                }
            }
        }
        tx.commit().map_err(|e| sql_error(&path, e))
    }

    /// Deletes changes (and domains not probed) older than the retention; returns how many
    /// rows went.
    pub fn prune(&mut self, now: i64) -> Result<usize, HistoryError> {
        let cutoff = now - i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX);
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sql_error(&path, e))?;
        let events = tx
            .execute("DELETE FROM events WHERE at < ?1", [cutoff])
            .map_err(|e| sql_error(&path, e))?;
        let domains = tx
            .execute("DELETE FROM domains WHERE updated_at < ?1", [cutoff])
            .map_err(|e| sql_error(&path, e))?;
        tx.commit().map_err(|e| sql_error(&path, e))?;
        Ok(events + domains)
    }

    /// The memory of a domain, if it was ever probed (and not pruned).
    pub fn memory(&self, domain: &str) -> Result<Option<DomainMemory>, HistoryError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT memory FROM domains WHERE domain = ?1",
                [domain],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        // A memory that does not parse (written by another version) starts afresh.
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The latest `limit` changes of a domain, oldest first.
    pub fn timeline(&self, domain: &str, limit: usize) -> Result<Vec<Change>, HistoryError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT at, kind, subject, before, after FROM events WHERE domain = ?1
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        let rows = statement
            .query_map(
                params![domain, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (at, kind, subject, before, after) = row.map_err(|e| self.sql(e))?;
            // Kinds this version does not know (a newer exporter's) are skipped.
            if let Some(kind) = ChangeKind::parse(&kind) {
                out.push(Change {
                    at,
                    kind,
                    subject,
                    before,
                    after,
                });
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Number of changes stored for a domain.
    pub fn count(&self, domain: &str) -> Result<usize, HistoryError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM events WHERE domain = ?1",
                [domain],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(|e| self.sql(e))
    }

    fn sql(&self, source: rusqlite::Error) -> HistoryError {
        sql_error(&self.path, source)
    }
}

fn sql_error(path: &Path, source: rusqlite::Error) -> HistoryError {
    HistoryError::Sql {
        path: path.to_owned(),
        source,
    }
}

/// Names the failures an admin can act on.
fn classify(path: &Path, error: rusqlite::Error) -> HistoryError {
    use rusqlite::ffi::ErrorCode;
    let code = error.sqlite_error_code();
    match code {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => HistoryError::Corrupt {
            path: path.to_owned(),
            reason: error.to_string(),
        },
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            HistoryError::ReadOnly {
                path: path.to_owned(),
                reason: error.to_string(),
            }
        }
        _ => sql_error(path, error),
    }
}

fn now() -> i64 {
    crate::net::tls::unix_now()
}

enum Command {
    Write(Box<Entry>),
    Flush(oneshot::Sender<()>),
}

/// The history as the exporter uses it: writes go through a bounded queue to one writer thread;
/// reads (a domain's memory and timeline, once per domain after a start) take the same
/// connection briefly on the blocking pool. Without a usable database it does nothing, and
/// the exporter keeps probing with its history in memory.
#[derive(Debug, Clone)]
pub struct History {
    inner: Option<Arc<Inner>>,
    writable: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Inner {
    db: Arc<Mutex<HistoryDb>>,
    queue: mpsc::Sender<Command>,
    path: PathBuf,
}

impl History {
    /// No history on disk.
    pub fn disabled() -> Self {
        Self {
            inner: None,
            writable: Arc::new(AtomicBool::new(false)),
            failures: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Opens the database and starts its writer thread (needs a Tokio runtime for nothing: the
    /// thread is a plain OS thread).
    pub fn open(path: &Path, retention: Duration, max_events: usize) -> Result<Self, HistoryError> {
        let db = Arc::new(Mutex::new(HistoryDb::open(path, retention, max_events)?));
        let (queue, receiver) = mpsc::channel(QUEUE);
        let writable = Arc::new(AtomicBool::new(true));
        let failures = Arc::new(AtomicU64::new(0));
        let thread_db = db.clone();
        let thread_writable = writable.clone();
        let thread_failures = failures.clone();
        std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || writer(receiver, thread_db, thread_writable, thread_failures))
            .map_err(|e| HistoryError::ReadOnly {
                path: path.to_owned(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                db,
                queue,
                path: path.to_owned(),
            })),
            writable,
            failures,
        })
    }

    /// The file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.as_ref().map(|i| i.path.as_path())
    }

    /// The last write succeeded (false without a database).
    pub fn writable(&self) -> bool {
        self.inner.is_some() && self.writable.load(Ordering::Relaxed)
    }

    /// Writes that failed since the start.
    pub fn write_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Queues a probe's entry; waits (asynchronously) while the queue is full.
    pub async fn record(&self, entry: Entry) {
        if let Some(inner) = &self.inner
            && inner
                .queue
                .send(Command::Write(Box::new(entry)))
                .await
                .is_err()
        {
            self.writable.store(false, Ordering::Relaxed);
        }
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) {
        let Some(inner) = &self.inner else { return };
        let (done, wait) = oneshot::channel();
        if inner.queue.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// A domain's memory and latest changes (oldest first), read on the blocking pool.
    pub async fn load(&self, domain: &str) -> Option<(DomainMemory, Vec<Change>)> {
        let inner = self.inner.as_ref()?;
        let db = inner.db.clone();
        let domain = domain.to_owned();
        let result = tokio::task::spawn_blocking(move || {
            let db = db.lock().unwrap_or_else(PoisonError::into_inner);
            let memory = db.memory(&domain)?;
            let timeline = db.timeline(&domain, TIMELINE_LENGTH)?;
            Ok::<_, HistoryError>(memory.map(|m| (m, timeline)))
        })
        .await;
        match result {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                tracing::warn!(%error, "history: cannot read a domain's history");
                None
            }
            Err(_) => None,
        }
    }
}

/// The writer thread: takes whatever is queued, commits it in one transaction, prunes hourly.
fn writer(
    mut receiver: mpsc::Receiver<Command>,
    db: Arc<Mutex<HistoryDb>>,
    writable: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
) {
    const BATCH: usize = 256;
    // Pruning at start may delete many rows: here, not on the caller's (async) thread.
    let mut last_prune = now();
    match db
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .prune(last_prune)
    {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "history: removed entries past the retention"),
        Err(error) => tracing::warn!(%error, "history: pruning failed"),
    }
    while let Some(first) = receiver.blocking_recv() {
        let mut entries = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Write(entry) => entries.push(*entry),
                Command::Flush(done) => flushes.push(done),
            }
            if entries.len() < BATCH {
                next = receiver.try_recv().ok();
            }
        }
        if !entries.is_empty() {
            let mut db = db.lock().unwrap_or_else(PoisonError::into_inner);
            match db.write(&entries) {
                Ok(()) => {
                    if !writable.swap(true, Ordering::Relaxed) {
                        tracing::info!("history: writing again");
                    }
                }
                Err(error) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    if writable.swap(false, Ordering::Relaxed) {
                        tracing::error!(%error, "history: write failed; changes are kept in memory only until writes succeed again");
                    }
                }
            }
            if now() - last_prune >= 3600 {
                last_prune = now();
                if let Err(error) = db.prune(last_prune) {
                    tracing::warn!(%error, "history: pruning failed");
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::history::DomainState;
    use crate::model::step::Outcome;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn change(at: i64, n: usize) -> Change {
        Change {
            at,
            kind: ChangeKind::SoaSerial,
            subject: String::new(),
            before: n.to_string(),
            after: (n + 1).to_string(),
        }
    }

    fn entry(domain: &str, changes: Vec<Change>) -> Entry {
        Entry {
            domain: domain.into(),
            memory: DomainMemory {
                state: DomainState {
                    outcome: Some(Outcome::Ok),
                    ..DomainState::default()
                },
                last_change_at: changes.last().map(|c| c.at),
                delegation_change: None,
            },
            changes,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "autodiscover-history-{name}-{}-{}",
            std::process::id(),
            now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn changes_and_memory_survive_reopening() {
        let dir = temp_dir("reopen");
        let path = dir.join("h.db");
        let t = now();
        {
            let mut db = HistoryDb::open(&path, 90 * DAY, 100).unwrap();
            db.write(&[entry("a.example", vec![change(t, 1), change(t, 2)])])
                .unwrap();
            db.write(&[entry("b.example", vec![])]).unwrap();
        }
        let db = HistoryDb::open(&path, 90 * DAY, 100).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(
            db.timeline("a.example", 10).unwrap(),
            vec![change(t, 1), change(t, 2)]
        );
        assert_eq!(
            db.memory("a.example").unwrap().unwrap().last_change_at,
            Some(t)
        );
        assert!(db.memory("b.example").unwrap().is_some());
        assert!(db.memory("c.example").unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn events_per_domain_are_capped_oldest_first() {
        let mut db = HistoryDb::open(Path::new(":memory:"), 90 * DAY, 5).unwrap();
        let t = now();
        for n in 0..12 {
            db.write(&[entry("a.example", vec![change(t, n)])]).unwrap();
        }
        db.write(&[entry("b.example", vec![change(t, 0)])]).unwrap();
        assert_eq!(db.count("a.example").unwrap(), 5);
        let kept: Vec<String> = db
            .timeline("a.example", 100)
            .unwrap()
            .into_iter()
            .map(|c| c.before)
            .collect();
        assert_eq!(kept, ["7", "8", "9", "10", "11"]);
        assert_eq!(db.count("b.example").unwrap(), 1);
    }

    #[test]
    fn retention_removes_old_changes_and_forgotten_domains() {
        let mut db = HistoryDb::open(Path::new(":memory:"), 90 * DAY, 100).unwrap();
        let t = now();
        let old = t - 91 * 24 * 3600;
        db.write(&[entry("a.example", vec![change(old, 1), change(t, 2)])])
            .unwrap();
        db.write(&[entry("gone.example", vec![change(old, 1)])])
            .unwrap();
        assert_eq!(db.prune(t).unwrap(), 3);
        assert_eq!(db.timeline("a.example", 10).unwrap(), vec![change(t, 2)]);
        assert!(db.memory("gone.example").unwrap().is_none());
        assert!(db.memory("a.example").unwrap().is_some());
    }

    #[test]
    fn an_old_schema_is_migrated_and_keeps_its_rows() {
        let dir = temp_dir("migrate");
        let path = dir.join("h.db");
        {
            let conn = Connection::open(&path).unwrap();
            let mut db = HistoryDb {
                conn,
                path: path.clone(),
                retention: 90 * DAY,
                max_events: 100,
            };
            db.migrate_to(1).unwrap();
            assert_eq!(db.schema_version().unwrap(), 1);
            db.conn
                .execute(
                    "INSERT INTO events (domain, at, kind, subject, before, after)
                     VALUES ('a.example', 5, 'verdict', '', 'ok', 'not_found')",
                    [],
                )
                .unwrap();
        }
        let db = HistoryDb::open(&path, 90 * DAY, 100).unwrap();
        assert_eq!(db.schema_version().unwrap(), 2);
        let timeline = db.timeline("a.example", 10).unwrap();
        assert_eq!(timeline.len(), 1);
        assert_eq!(timeline[0].kind, ChangeKind::Verdict);
        assert!(db.memory("a.example").unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = temp_dir("newer");
        let path = dir.join("h.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let error = HistoryDb::open(&path, 90 * DAY, 100).unwrap_err();
        assert!(
            matches!(error, HistoryError::NewerSchema { found: 99, .. }),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let error = HistoryDb::open(Path::new("/nonexistent-dir/sub/h.db"), DAY, 10).unwrap_err();
        assert!(
            matches!(error, HistoryError::MissingDirectory { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("/nonexistent-dir/sub"),
            "{error}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = temp_dir("corrupt");
        let path = dir.join("h.db");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let error = HistoryDb::open(&path, DAY, 10).unwrap_err();
        assert!(matches!(error, HistoryError::Corrupt { .. }), "{error}");
        assert!(error.to_string().contains("move it away"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_read_only_database_is_a_clear_error() {
        let dir = temp_dir("readonly");
        let path = dir.join("h.db");
        drop(HistoryDb::open(&path, DAY, 10).unwrap());
        // Root ignores file modes, so open the connection read-only the way SQLite does when
        // the file or the mount is not writable.
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let db = HistoryDb {
            conn,
            path: path.clone(),
            retention: DAY,
            max_events: 10,
        };
        let error = db.check_writable().unwrap_err();
        assert!(matches!(error, HistoryError::ReadOnly { .. }), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_writer_thread_commits_what_is_queued() {
        let dir = temp_dir("writer");
        let path = dir.join("h.db");
        let history = History::open(&path, 90 * DAY, 100).unwrap();
        let t = now();
        for n in 0..50 {
            history.record(entry("a.example", vec![change(t, n)])).await;
        }
        history.flush().await;
        assert!(history.writable());
        let (memory, timeline) = history.load("a.example").await.unwrap();
        assert_eq!(memory.last_change_at, Some(t));
        assert_eq!(timeline.len(), 50);
        let _ = std::fs::remove_dir_all(dir);
    }
}
