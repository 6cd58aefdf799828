//! Probe credentials (SPEC §3.4): read from the file the configuration names, only when a probe
//! needs them, wiped from memory after use, and never shown: `Debug` redacts them and no error
//! message quotes the file's content.

use base64::Engine;
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Largest credentials file read.
const MAX_FILE_BYTES: u64 = 16 * 1024;

/// Where a domain's credentials come from and where they may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsPolicy {
    /// The YAML file with `username` and `password`.
    pub file: PathBuf,
    /// Hosts that may receive the credentials when the endpoint was reached through a redirect
    /// (lower case, A-labels).
    pub hosts: Vec<String>,
}

/// A username and password, wiped when dropped.
pub struct Credentials {
    username: Zeroizing<String>,
    password: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &"<redacted>")
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a credentials file cannot be used. The messages name the file, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The file cannot be opened or read.
    #[error("cannot read the credentials file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// Not a regular file, or too large.
    #[error("the credentials file {path} is not a regular file of at most 16 KiB")]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// Group or others may read or write it.
    #[error(
        "the credentials file {path} can be read or written by group or others (mode {mode:04o}): \
         run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a YAML mapping with exactly `username` and `password`.
    #[error(
        "the credentials file {path} is not a YAML mapping with `username` and `password` \
         (and nothing else){where_}"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// ` at line L column C`, when known.
        where_: String,
    },
    /// The username is empty, too long, or has characters Basic authentication cannot carry.
    #[error(
        "the username in {path} must be 1 to 256 characters, without `:` or control characters"
    )]
    BadUsername {
        /// The file.
        path: PathBuf,
    },
    /// The password is empty or too long.
    #[error("the password in {path} must be 1 to 1024 characters without control characters")]
    BadPassword {
        /// The file.
        path: PathBuf,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Reads and checks a credentials file: a regular file of mode 0600 (or stricter) holding
    /// `username: ...` and `password: ...`.
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let unreadable = |e: std::io::Error| CredentialsError::Unreadable {
            path: path.to_owned(),
            reason: e.kind().to_string(),
        };
        let metadata = std::fs::metadata(path).map_err(unreadable)?;
        if !metadata.is_file() || metadata.len() > MAX_FILE_BYTES {
            return Err(CredentialsError::NotAFile {
                path: path.to_owned(),
            });
        }
        check_mode(path, &metadata)?;
        let bytes = Zeroizing::new(std::fs::read(path).map_err(unreadable)?);
        let malformed = |where_: String| CredentialsError::Malformed {
            path: path.to_owned(),
            where_,
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| malformed(String::new()))?;
        // The parser's own message may quote the text it choked on: keep only the location.
        let raw: RawCredentials = serde_saphyr::from_str(text).map_err(|e| {
            malformed(
                e.location()
                    .map(|l| format!(" (at line {} column {})", l.line(), l.column()))
                    .unwrap_or_default(),
            )
        })?;
        let credentials = Self {
            username: Zeroizing::new(raw.username),
            password: Zeroizing::new(raw.password),
        };
        let user = credentials.username.as_str();
        if user.is_empty()
            || user.chars().count() > 256
            || user.contains(':')
            || user.chars().any(char::is_control)
        {
            return Err(CredentialsError::BadUsername {
                path: path.to_owned(),
            });
        }
        let password = credentials.password.as_str();
        if password.is_empty()
            || password.chars().count() > 1024
            || password.chars().any(char::is_control)
        {
            return Err(CredentialsError::BadPassword {
                path: path.to_owned(),
            });
        }
        Ok(credentials)
    }

    /// From a username and a password (tests, the simulated world).
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: Zeroizing::new(username.to_owned()),
            password: Zeroizing::new(password.to_owned()),
        }
    }

    /// The `Authorization` header value of Basic authentication, wiped when dropped.
    pub fn basic_authorization(&self) -> Zeroizing<String> {
        let mut pair = Zeroizing::new(String::with_capacity(
            self.username.len() + self.password.len() + 1,
        ));
        pair.push_str(&self.username);
        pair.push(':');
        pair.push_str(&self.password);
        let mut value = Zeroizing::new(String::from("Basic "));
        base64::engine::general_purpose::STANDARD.encode_string(pair.as_bytes(), &mut value);
        value
    }

    /// The password equals `candidate` (the simulated servers check Basic credentials).
    pub fn matches(&self, username: &str, password: &str) -> bool {
        self.username.as_str() == username && self.password.as_str() == password
    }
}

#[cfg(unix)]
fn check_mode(path: &Path, metadata: &std::fs::Metadata) -> Result<(), CredentialsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o066 != 0 {
        return Err(CredentialsError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &Path, _: &std::fs::Metadata) -> Result<(), CredentialsError> {
    Ok(())
}

/// Decodes a Basic `Authorization` header into user and password (the simulated servers).
pub fn decode_basic(header: &str) -> Option<(String, Zeroizing<String>)> {
    let encoded = header.strip_prefix("Basic ")?.trim();
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?,
    );
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), Zeroizing::new(password.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A file in a fresh directory of its own, with `mode`; the directory goes with it.
    pub(crate) fn file(name: &str, content: &str, mode: u32) -> TestFile {
        let dir = std::env::temp_dir().join(format!(
            "autodiscover-credentials-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("credentials.yml");
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        TestFile { dir, path }
    }

    pub(crate) struct TestFile {
        dir: PathBuf,
        path: PathBuf,
    }

    impl std::ops::Deref for TestFile {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.path
        }
    }

    impl Drop for TestFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_private_file_loads_and_never_shows_its_secret() {
        let path = file(
            "ok",
            "username: probe@x.example\npassword: 's3cr3t:pw'\n",
            0o600,
        );
        let credentials = Credentials::load(&path).unwrap();
        let debug = format!("{credentials:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("probe@"),
            "{debug}"
        );
        assert_eq!(
            credentials.basic_authorization().as_str(),
            "Basic cHJvYmVAeC5leGFtcGxlOnMzY3IzdDpwdw=="
        );
        let (user, password) = decode_basic(&credentials.basic_authorization()).unwrap();
        assert_eq!(
            (user.as_str(), password.as_str()),
            ("probe@x.example", "s3cr3t:pw")
        );
    }

    #[test]
    fn unsafe_or_broken_files_are_refused_without_quoting_them() {
        let readable = file("readable", "username: u\npassword: hunter2\n", 0o644);
        let error = Credentials::load(&readable).unwrap_err();
        assert!(matches!(
            error,
            CredentialsError::Permissions { mode: 0o644, .. }
        ));
        assert!(error.to_string().contains("chmod 600"), "{error}");
        for (name, content) in [
            ("extra", "username: u\npassword: hunter2\ntoken: hunter2\n"),
            ("list", "- hunter2\n"),
            ("type", "username: [hunter2]\npassword: hunter2\n"),
            ("missing", "username: hunter2\n"),
            ("colon", "username: 'a:hunter2'\npassword: x\n"),
            ("empty", "username: u\npassword: ''\n"),
        ] {
            let path = file(name, content, 0o600);
            let error = Credentials::load(&path).unwrap_err();
            assert!(!error.to_string().contains("hunter2"), "{name}: {error}");
            assert!(
                !format!("{error:?}").contains("hunter2"),
                "{name}: {error:?}"
            );
        }
        let missing = Credentials::load(Path::new("/nonexistent/credentials.yml")).unwrap_err();
        assert!(matches!(missing, CredentialsError::Unreadable { .. }));
    }
}
