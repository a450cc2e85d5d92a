//! CURVE certificate files: the ZPL (ZeroMQ Property Language, RFC 4) files in which pyzmq's
//! `zmq.auth` and czmq's `zcert` keep CURVE keys.
//!
//! A certificate is a pair of files: `NAME.key`, the public certificate, given to peers (a server's
//! allow list is a directory of them), and `NAME.key_secret`, the secret certificate, which also holds
//! the secret key and must be readable by its owner only. pyzmq writes them so:
//!
//! ```text
//! #   ****  Generated on 2024-05-01 12:00:00.000000 by pyzmq  ****
//! #   ZeroMQ CURVE **Secret** Certificate
//! #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.
//!
//! metadata
//! curve
//!     public-key = "+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo"
//!     secret-key = "CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP"
//! ```
//!
//! [`Certificate::load`] reads that format and czmq's (the same ZPL, parsed as czmq's `zconfig` does:
//! sections by 4-space indentation, `name = "value"`, `name = 'value'` or `name = value` up to a `#`
//! comment). Reading is bounded ([`MAX_FILE_LEN`]) and refuses anything that does not parse, with the
//! file and line. [`Certificate::save_public`] and [`Certificate::save_secret`] write files that pyzmq,
//! czmq and libzmq's tools read; the secret one is created with mode 0600, and both are replaced
//! atomically (a new file renamed over the old one). [`load_secret`] refuses a secret certificate
//! readable or writable by group or others, as ssh does for its keys.
//!
//! ```no_run
//! # fn main() -> Result<(), zmtp::cert::CertError> {
//! let (public_file, secret_file) = zmtp::cert::create_certificates("/etc/relay/keys", "server")?;
//! let server = zmtp::cert::load_secret(&secret_file)?;
//! let allowed = zmtp::cert::load_public_keys("/etc/relay/clients")?;
//! # let _ = (public_file, server, allowed);
//! # Ok(())
//! # }
//! ```

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::proto::keys::{CurveKeyPair, CurvePublicKey, CurveSecretKey, KeyError};

/// The largest certificate file read, in octets (a real one is under 1 KiB).
pub const MAX_FILE_LEN: u64 = 64 * 1024;

/// The extension of a public certificate file (`NAME.key`).
pub const PUBLIC_EXTENSION: &str = "key";

/// The extension of a secret certificate file (`NAME.key_secret`).
pub const SECRET_EXTENSION: &str = "key_secret";

/// Why a certificate could not be read, written or trusted. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The file or directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("read", "write", "read directory", ...).
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The path is not a regular file (a directory, a device, a FIFO...).
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than any certificate ([`MAX_FILE_LEN`]).
    #[error("{} is larger than {max} octets: not a certificate", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, [`MAX_FILE_LEN`].
        max: u64,
    },
    /// The file is not valid ZPL (or not UTF-8).
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file has no `curve` section with a `public-key`.
    #[error("{}: no public key (no `public-key` in a `curve` section)", path.display())]
    MissingPublicKey {
        /// The file.
        path: PathBuf,
    },
    /// The public key is not a 40-character Z85 key.
    #[error("{}: bad public key: {source}", path.display())]
    BadPublicKey {
        /// The file.
        path: PathBuf,
        /// Why the key was refused.
        #[source]
        source: KeyError,
    },
    /// The secret key is not a 40-character Z85 key (no detail is given, lest it reveal the secret).
    #[error("{}: the secret key is not a valid 40-character Z85 CURVE key", path.display())]
    BadSecretKey {
        /// The file.
        path: PathBuf,
    },
    /// A secret key was required, but the file has none (a public certificate), or there is none to
    /// save.
    #[error("{}: no secret key (is it a public certificate?)", path.display())]
    MissingSecretKey {
        /// The file.
        path: PathBuf,
    },
    /// The file's public key is not that of its secret key.
    #[error("{}: the public key is not the secret key's", path.display())]
    KeyMismatch {
        /// The file.
        path: PathBuf,
    },
    /// A secret key file is readable or writable by group or others.
    #[error(
        "{} has mode {mode:04o}: a secret certificate must be neither readable nor writable by group \
         or others (chmod 600 it)",
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A metadata entry cannot be written as ZPL that pyzmq and czmq read back unchanged.
    #[error("{}: cannot write metadata {name:?}: {reason}", path.display())]
    BadMetadata {
        /// The file being written.
        path: PathBuf,
        /// The entry's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A certificate name that is not a plain file name (empty, `.`, `..`, or with a `/`).
    #[error("{}: a certificate name must be a plain file name", path.display())]
    BadName {
        /// The directory joined with the name.
        path: PathBuf,
    },
    /// The operating system gave no randomness for a new key.
    #[error("cannot generate a key for {}: {error}", path.display())]
    Random {
        /// The file the key was for.
        path: PathBuf,
        /// The operating system's error.
        error: crate::proto::KeyError,
    },
}

impl CertError {
    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        match self {
            CertError::Io { path, .. }
            | CertError::NotAFile { path }
            | CertError::TooLarge { path, .. }
            | CertError::Parse { path, .. }
            | CertError::MissingPublicKey { path }
            | CertError::BadPublicKey { path, .. }
            | CertError::BadSecretKey { path }
            | CertError::MissingSecretKey { path }
            | CertError::KeyMismatch { path }
            | CertError::InsecurePermissions { path, .. }
            | CertError::BadMetadata { path, .. }
            | CertError::BadName { path }
            | CertError::Random { path, .. } => path,
        }
    }
}

/// A CURVE certificate: a public key, the secret key when this is a secret certificate, and metadata
/// (name-value pairs of the `metadata` section, in file order). `Debug` never shows the secret key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The public key.
    pub public: CurvePublicKey,
    /// The secret key: `Some` for a secret certificate, `None` for a public one.
    pub secret: Option<CurveSecretKey>,
    /// The `metadata` section's entries, in order.
    pub metadata: Vec<(String, String)>,
}

impl Certificate {
    /// The secret certificate of `secret` (no metadata).
    pub fn new(secret: CurveSecretKey) -> Self {
        Certificate { public: secret.public_key(), secret: Some(secret), metadata: Vec::new() }
    }

    /// A public certificate (no secret key, no metadata).
    pub fn from_public(public: CurvePublicKey) -> Self {
        Certificate { public, secret: None, metadata: Vec::new() }
    }

    /// A secret certificate with a new random key pair.
    ///
    /// # Errors
    /// [`crate::proto::KeyError::NoRandomness`] if the operating system has no randomness to give.
    pub fn generate() -> Result<Self, crate::proto::KeyError> {
        CurveSecretKey::generate().map(Certificate::new)
    }

    /// The key pair, for a secret certificate.
    pub fn key_pair(&self) -> Option<CurveKeyPair> {
        self.secret.clone().map(CurveKeyPair::from_secret)
    }

    /// This certificate without its secret key (what [`Certificate::save_public`] writes).
    pub fn to_public(&self) -> Certificate {
        Certificate { public: self.public, secret: None, metadata: self.metadata.clone() }
    }

    /// Reads a certificate file (public or secret), pyzmq's or czmq's. Does not check the file's
    /// permissions: use [`load_secret`] for a secret key.
    ///
    /// # Errors
    /// [`CertError::Io`], [`CertError::NotAFile`] or [`CertError::TooLarge`] if the file cannot be
    /// read (or is over [`MAX_FILE_LEN`]); [`CertError::Parse`] if it is not ZPL;
    /// [`CertError::MissingPublicKey`], [`CertError::BadPublicKey`] or [`CertError::BadSecretKey`] for
    /// missing or malformed keys; [`CertError::KeyMismatch`] if the public key is not the secret key's.
    pub fn load(path: impl AsRef<Path>) -> Result<Certificate, CertError> {
        let path = path.as_ref();
        let bytes = read_bounded(path, false)?;
        parse(path, &bytes)
    }

    /// Writes the public certificate (`NAME.key`: the public key and metadata, never the secret key),
    /// replacing any file at `path` atomically.
    ///
    /// # Errors
    /// [`CertError::BadMetadata`] for metadata that cannot be written so that pyzmq and czmq read it
    /// back unchanged (a name that is not a ZPL name or starts with `public-key` or `secret-key`, a
    /// value with control characters or with both `"` and `'`); [`CertError::Io`] if the file cannot be
    /// written.
    pub fn save_public(&self, path: impl AsRef<Path>) -> Result<(), CertError> {
        let path = path.as_ref();
        let text = self.render(path, false)?;
        write_atomically(path, text.as_bytes(), 0o644)
    }

    /// Writes the secret certificate (`NAME.key_secret`: both keys and metadata), created with mode
    /// 0600 and replacing any file at `path` atomically (so an old file's looser mode goes with it).
    ///
    /// # Errors
    /// [`CertError::MissingSecretKey`] for a public certificate; [`CertError::BadMetadata`] for metadata
    /// that cannot be written faithfully; [`CertError::Io`] if the file cannot be written.
    pub fn save_secret(&self, path: impl AsRef<Path>) -> Result<(), CertError> {
        let path = path.as_ref();
        let text = self.render(path, true)?;
        write_atomically(path, text.as_bytes(), 0o600)
    }

    /// The ZPL text of the public (`with_secret` false) or secret certificate.
    fn render(&self, path: &Path, with_secret: bool) -> Result<Zeroizing<String>, CertError> {
        let secret = match (&self.secret, with_secret) {
            (Some(secret), true) => Some(Zeroizing::new(secret.to_z85())),
            (None, true) => return Err(CertError::MissingSecretKey { path: path.to_owned() }),
            (_, false) => None,
        };
        let metadata_len: usize = self.metadata.iter().map(|(n, v)| n.len() + v.len() + 12).sum();
        // Room for everything up front: no reallocation leaves a copy of the secret behind.
        let mut text = Zeroizing::new(String::with_capacity(1024 + metadata_len));
        text.push_str("#   ****  Generated on ");
        text.push_str(&utc_timestamp(SystemTime::now()));
        text.push_str(" by zmtp  ****\n");
        text.push_str(if with_secret { SECRET_BANNER } else { PUBLIC_BANNER });
        text.push_str("\nmetadata\n");
        for (name, value) in &self.metadata {
            let quote = check_metadata(path, name, value)?;
            text.push_str("    ");
            text.push_str(name);
            text.push_str(" = ");
            text.push(quote);
            text.push_str(value);
            text.push(quote);
            text.push('\n');
        }
        text.push_str("curve\n    public-key = \"");
        text.push_str(&self.public.to_z85());
        text.push_str("\"\n");
        if let Some(secret) = secret {
            text.push_str("    secret-key = \"");
            text.push_str(&secret);
            text.push_str("\"\n");
        }
        Ok(text)
    }
}

/// The banner of a secret certificate after the "Generated" line (pyzmq's and czmq's words).
const SECRET_BANNER: &str = "\
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.
";

/// The banner of a public certificate after the "Generated" line (pyzmq's and czmq's words).
const PUBLIC_BANNER: &str = "\
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.
";

/// Reads a secret certificate, refusing it if its permissions let group or others read or write it
/// (checked on the opened file, so the file checked is the file read).
///
/// # Errors
/// Those of [`Certificate::load`], [`CertError::InsecurePermissions`] if `mode & 0o077 != 0`, and
/// [`CertError::MissingSecretKey`] for a public certificate.
pub fn load_secret(path: impl AsRef<Path>) -> Result<Certificate, CertError> {
    let path = path.as_ref();
    let bytes = read_bounded(path, true)?;
    let cert = parse(path, &bytes)?;
    if cert.secret.is_none() {
        return Err(CertError::MissingSecretKey { path: path.to_owned() });
    }
    Ok(cert)
}

/// Refuses a secret key file that group or others may read or write (`mode & 0o077 != 0`), as ssh
/// does. Always accepts on systems without Unix permissions.
///
/// # Errors
/// [`CertError::InsecurePermissions`] for such a file; [`CertError::Io`] if it cannot be examined.
pub fn check_secret_file_permissions(path: impl AsRef<Path>) -> Result<(), CertError> {
    let path = path.as_ref();
    let metadata = fs::metadata(path).map_err(io_error(path, "examine"))?;
    check_mode(path, &metadata)
}

/// Creates a new key pair as `DIR/NAME.key` (public) and `DIR/NAME.key_secret` (secret, mode 0600),
/// like pyzmq's `zmq.auth.create_certificates`, replacing existing files of those names. Returns the
/// paths of the public and secret files.
///
/// # Errors
/// [`CertError::BadName`] if `name` is not a plain file name; [`CertError::Random`] if no key can be
/// generated; [`CertError::Io`] if a file cannot be written (`dir` must exist).
pub fn create_certificates(dir: impl AsRef<Path>, name: &str) -> Result<(PathBuf, PathBuf), CertError> {
    let dir = dir.as_ref();
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(CertError::BadName { path: dir.join(name) });
    }
    let public_path = dir.join(format!("{name}.{PUBLIC_EXTENSION}"));
    let secret_path = dir.join(format!("{name}.{SECRET_EXTENSION}"));
    let cert =
        Certificate::generate().map_err(|error| CertError::Random { path: secret_path.clone(), error })?;
    cert.save_public(&public_path)?;
    cert.save_secret(&secret_path)?;
    Ok((public_path, secret_path))
}

/// The public keys of every public certificate (`*.key`, not hidden) in `dir`, in file name order
/// without duplicates: a CURVE server's allow list, as pyzmq's `zmq.auth.load_certificates` reads it.
/// Directories named `*.key` are skipped.
///
/// # Errors
/// [`CertError::Io`] if the directory cannot be read; the first file that cannot be loaded fails the
/// whole call with that file's error (see [`Certificate::load`]), rather than giving a partial list.
pub fn load_public_keys(dir: impl AsRef<Path>) -> Result<Vec<CurvePublicKey>, CertError> {
    let dir = dir.as_ref();
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir, "read directory"))? {
        let entry = entry.map_err(io_error(dir, "read directory"))?;
        let path = entry.path();
        let hidden = entry.file_name().as_encoded_bytes().starts_with(b".");
        if hidden || path.extension() != Some(OsStr::new(PUBLIC_EXTENSION)) {
            continue;
        }
        // Follows symbolic links: a dangling one is an error, not silently skipped.
        if fs::metadata(&path).map_err(io_error(&path, "examine"))?.is_dir() {
            continue;
        }
        files.push(path);
    }
    files.sort();
    let mut keys: Vec<CurvePublicKey> = Vec::with_capacity(files.len());
    for file in files {
        let public = Certificate::load(&file)?.public;
        if !keys.contains(&public) {
            keys.push(public);
        }
    }
    Ok(keys)
}

/// Maps an I/O error to [`CertError::Io`] for `path`.
fn io_error<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> CertError + 'a {
    move |source| CertError::Io { path: path.to_owned(), action, source }
}

/// Refuses permissions that let group or others read or write the file.
#[cfg(unix)]
fn check_mode(path: &Path, metadata: &fs::Metadata) -> Result<(), CertError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(CertError::InsecurePermissions { path: path.to_owned(), mode });
    }
    Ok(())
}

/// No Unix permissions to check.
#[cfg(not(unix))]
fn check_mode(_path: &Path, _metadata: &fs::Metadata) -> Result<(), CertError> {
    Ok(())
}

/// Reads a regular file of at most [`MAX_FILE_LEN`] octets (zeroized when dropped: it may hold a secret
/// key), checking its permissions first if `secret`.
fn read_bounded(path: &Path, secret: bool) -> Result<Zeroizing<Vec<u8>>, CertError> {
    let too_large = || CertError::TooLarge { path: path.to_owned(), max: MAX_FILE_LEN };
    // Examined before opening, so that opening a FIFO does not wait for a writer...
    let metadata = fs::metadata(path).map_err(io_error(path, "read"))?;
    if !metadata.is_file() {
        return Err(CertError::NotAFile { path: path.to_owned() });
    }
    let file = File::open(path).map_err(io_error(path, "read"))?;
    // ... and again once open: the file examined is the file read.
    let metadata = file.metadata().map_err(io_error(path, "read"))?;
    if !metadata.is_file() {
        return Err(CertError::NotAFile { path: path.to_owned() });
    }
    if metadata.len() > MAX_FILE_LEN {
        return Err(too_large());
    }
    if secret {
        check_mode(path, &metadata)?;
    }
    // Capacity for the whole file up front: no reallocation leaves a copy of the secret behind.
    let capacity = usize::try_from(metadata.len().min(MAX_FILE_LEN)).unwrap_or(0).saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    // Bounded even if the file grows meanwhile.
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes).map_err(io_error(path, "read"))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_LEN {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Writes `contents` to a new file beside `path` (created with `mode`, before the umask) and renames
/// it over `path`: readers see the old file or the new one, never a partial one, and an existing
/// file's permissions (or a symbolic link at `path`) are replaced, not reused.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(file_name) = path.file_name() else {
        let source = io::Error::new(io::ErrorKind::InvalidInput, "not a file name");
        return Err(CertError::Io { path: path.to_owned(), action: "write", source });
    };
    let mut temp_name = OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let temp = path.with_file_name(temp_name);

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temp).map_err(io_error(path, "write"))?;
    let written =
        file.write_all(contents).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&temp, path));
    if let Err(source) = written {
        drop(file);
        let _ = fs::remove_file(&temp);
        return Err(CertError::Io { path: path.to_owned(), action: "write", source });
    }
    Ok(())
}

/// A ZPL name character (czmq's `s_is_namechar`).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '$' | '-' | '_' | '@' | '.' | '&' | '+' | '/')
}

/// Whether `c` is whitespace to C's `isspace` (ASCII only).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Checks that a metadata entry can be written as a ZPL line that pyzmq and czmq read back unchanged,
/// and gives the quote to write its value with.
fn check_metadata(path: &Path, name: &str, value: &str) -> Result<char, CertError> {
    let refuse =
        |reason| Err(CertError::BadMetadata { path: path.to_owned(), name: name.to_owned(), reason });
    if name.is_empty() || !name.chars().all(is_name_char) {
        return refuse("a name is one or more of A-Z a-z 0-9 $ - _ @ . & + /");
    }
    if name.starts_with('/') || name.ends_with('/') {
        return refuse("a name cannot start or end with /");
    }
    // pyzmq's reader takes any line starting with these for the keys.
    if name.starts_with("public-key") || name.starts_with("secret-key") {
        return refuse("a name starting with public-key or secret-key would be read as a key");
    }
    if value.chars().any(char::is_control) {
        return refuse("a value cannot contain control characters (such as line ends)");
    }
    match (value.contains('"'), value.contains('\'')) {
        (false, _) => Ok('"'),
        (true, false) => Ok('\''),
        (true, true) => refuse("a value cannot contain both \" and '"),
    }
}

/// Parses a certificate's ZPL text as czmq's `zconfig` does, keeping `curve/public-key`,
/// `curve/secret-key` and the children of `metadata`.
fn parse(path: &Path, bytes: &[u8]) -> Result<Certificate, CertError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        CertError::Parse { path: path.to_owned(), line, reason: "not UTF-8 text" }
    })?;
    let mut stack: Vec<&str> = Vec::new();
    let mut public: Option<&str> = None;
    let mut secret: Option<&str> = None;
    let mut metadata = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let fail = |reason| CertError::Parse { path: path.to_owned(), line: index + 1, reason };
        let line = line.trim_end_matches(is_space);
        // Blank lines and comments, at any indentation.
        let content = line.trim_start_matches(is_space);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let rest = line.trim_start_matches(' ');
        let indent = line.len() - rest.len();
        if indent % 4 != 0 {
            return Err(fail("indentation is not a multiple of 4 spaces"));
        }
        let name_len = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
        let (name, after) = rest.split_at_checked(name_len).ok_or_else(|| fail("bad name"))?;
        if name.is_empty() {
            return Err(fail("expected a name (tabs are not indentation)"));
        }
        if name.starts_with('/') || name.ends_with('/') {
            return Err(fail("a name cannot start or end with /"));
        }
        let value = collect_value(after).map_err(fail)?;
        let level = indent / 4;
        if level > stack.len() {
            return Err(fail("indented deeper than the line above allows"));
        }
        stack.truncate(level);
        stack.push(name);
        match stack.as_slice() {
            ["curve", "public-key"] if public.is_some() => return Err(fail("a second public-key")),
            ["curve", "public-key"] => public = Some(value),
            ["curve", "secret-key"] if secret.is_some() => return Err(fail("a second secret-key")),
            ["curve", "secret-key"] => secret = Some(value),
            ["metadata", name] => metadata.push(((*name).to_owned(), value.to_owned())),
            _ => {}
        }
    }
    let public = public.ok_or_else(|| CertError::MissingPublicKey { path: path.to_owned() })?;
    let public = CurvePublicKey::from_z85(public)
        .map_err(|source| CertError::BadPublicKey { path: path.to_owned(), source })?;
    // An empty secret-key is no secret key, as for czmq.
    let secret = match secret.filter(|s| !s.is_empty()) {
        Some(text) => Some(
            CurveSecretKey::from_z85(text).map_err(|_| CertError::BadSecretKey { path: path.to_owned() })?,
        ),
        None => None,
    };
    if secret.as_ref().is_some_and(|s| s.public_key() != public) {
        return Err(CertError::KeyMismatch { path: path.to_owned() });
    }
    Ok(Certificate { public, secret, metadata })
}

/// The value after a name: `= "quoted"`, `= 'quoted'`, `= unquoted up to a # comment`, or nothing
/// (an empty value), followed only by spaces or a comment (czmq's `s_collect_value`).
fn collect_value(after: &str) -> Result<&str, &'static str> {
    let rest = after.trim_start_matches(is_space);
    let Some(rest) = rest.strip_prefix('=') else {
        return end_of_line(rest).map(|()| "");
    };
    let rest = rest.trim_start_matches(is_space);
    for quote in ['"', '\''] {
        if let Some(quoted) = rest.strip_prefix(quote) {
            let (value, tail) = quoted.split_once(quote).ok_or("a quoted value has no closing quote")?;
            return end_of_line(tail).map(|()| value);
        }
    }
    let value = rest.split_once('#').map_or(rest, |(value, _)| value);
    Ok(value.trim_end_matches(is_space))
}

/// Accepts the end of a line if it is only spaces, or spaces and a comment.
fn end_of_line(tail: &str) -> Result<(), &'static str> {
    let tail = tail.trim_start_matches(is_space);
    if tail.is_empty() || tail.starts_with('#') {
        Ok(())
    } else {
        Err("unexpected text after the value")
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for `time` (the epoch for times before it).
fn utc_timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    const SERVER_PUBLIC: &str = "+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo";
    const SERVER_SECRET: &str = "CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP";
    const CLIENT_PUBLIC: &str = "ofpH?!@pbQNQvvj0iGs&X./%u!FXkBB}VV:GTEvS";

    /// A fresh directory under the system temp dir, removed on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(name: &str) -> TestDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("zmtp-cert-{}-{n}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            TestDir(path)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.join(name);
            fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn parse_str(text: &str) -> Result<Certificate, CertError> {
        parse(Path::new("test.key"), text.as_bytes())
    }

    fn parse_error(text: &str) -> (usize, &'static str) {
        match parse_str(text) {
            Err(CertError::Parse { line, reason, .. }) => (line, reason),
            other => panic!("expected a parse error for {text:?}, got {other:?}"),
        }
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn server() -> Certificate {
        Certificate::new(CurveSecretKey::from_z85(SERVER_SECRET).unwrap())
    }

    /// Exactly what pyzmq 27's `create_certificates` writes (with metadata for the secret file).
    const PYZMQ_SECRET: &str = "#   ****  Generated on 2024-05-01 12:00:00.123456 by pyzmq  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
    name = the server
    owner = ops@example.com
curve
    public-key = \"+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo\"
    secret-key = \"CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP\"
";

    const PYZMQ_PUBLIC: &str = "#   ****  Generated on 2024-05-01 12:00:00.123456 by pyzmq  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.

metadata
curve
    public-key = \"+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo\"
";

    /// czmq's `zcert_save_secret` (zconfig: quoted values, comments stored on the root).
    const CZMQ_SECRET: &str = "#   ****  Generated on 2024-05-01 12:00:00 by CZMQ  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
    name = \"Justin Kayce\"
    email = 'some@random.com'   # a comment
curve
    public-key = \"+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo\"
    secret-key = \"CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP\"
";

    #[test]
    fn parses_pyzmq_certificates() {
        let secret = parse_str(PYZMQ_SECRET).unwrap();
        assert_eq!(secret.public.to_z85(), SERVER_PUBLIC);
        assert_eq!(secret.secret.as_ref().unwrap().to_z85(), SERVER_SECRET);
        assert_eq!(
            secret.metadata,
            [("name".into(), "the server".into()), ("owner".into(), "ops@example.com".into())]
        );
        let public = parse_str(PYZMQ_PUBLIC).unwrap();
        assert_eq!(public, Certificate::from_public(secret.public));
    }

    #[test]
    fn parses_czmq_certificates() {
        let cert = parse_str(CZMQ_SECRET).unwrap();
        assert_eq!(cert.secret, server().secret);
        assert_eq!(
            cert.metadata,
            [("name".into(), "Justin Kayce".into()), ("email".into(), "some@random.com".into())]
        );
    }

    #[test]
    fn parses_crlf_unquoted_and_commented_values() {
        let text = "metadata\r\n    a = 1 # one\r\n    b\r\n    c = #\r\n  # indented comment\r\n\
                    curve   # keys\r\n    public-key = +#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo\r\n";
        // Unquoted, the key's own `#` starts a comment (as for czmq): quote keys.
        assert!(matches!(parse_str(text), Err(CertError::BadPublicKey { .. })));
        let text = text.replace("= +#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo", &format!("= {CLIENT_PUBLIC}"));
        let cert = parse_str(&text).unwrap();
        assert_eq!(cert.public.to_z85(), CLIENT_PUBLIC);
        assert_eq!(cert.secret, None);
        assert_eq!(
            cert.metadata,
            [("a".into(), "1".into()), ("b".into(), "".into()), ("c".into(), "".into())]
        );
    }

    #[test]
    fn ignores_other_sections_and_deeper_levels() {
        let text = format!(
            "other\n    public-key = \"{CLIENT_PUBLIC}\"\ncurve\n    nested\n        public-key = \"x\"\n\
             \x20   public-key = \"{SERVER_PUBLIC}\"\nmetadata\n    a = 1\n        deep = 2\n"
        );
        let cert = parse_str(&text).unwrap();
        assert_eq!(cert.public.to_z85(), SERVER_PUBLIC);
        assert_eq!(cert.metadata, [("a".into(), "1".into())]);
    }

    #[test]
    fn refuses_malformed_zpl_with_the_line() {
        let key = format!("curve\n    public-key = \"{SERVER_PUBLIC}\"\n");
        assert_eq!(parse_error(&format!("{key}  bad = 1\n")).0, 3);
        assert_eq!(parse_error(&format!("{key}\tpublic-key = 1\n")).0, 3);
        assert_eq!(parse_error(&format!("# c\n{key}    x = \"unterminated\n")).0, 4);
        assert_eq!(parse_error(&format!("{key}    x = \"a\" junk\n")).0, 3);
        assert_eq!(parse_error(&format!("{key}    /x = 1\n")).0, 3);
        assert_eq!(parse_error(&format!("{key}    x/ = 1\n")).0, 3);
        assert_eq!(parse_error("curve\n        public-key = 1\n").0, 2);
        assert_eq!(parse_error("    curve\n").0, 1);
        assert_eq!(parse_error("= value\n").0, 1);
        assert_eq!(parse_error("curve junk\n").0, 1);
        assert_eq!(parse_error(&format!("{key}    public-key = \"{SERVER_PUBLIC}\"\n")).0, 3);
        let twice = format!("{key}curve\n    public-key = \"{SERVER_PUBLIC}\"\n");
        assert_eq!(parse_error(&twice), (4, "a second public-key"));
        let secrets =
            format!("{key}    secret-key = \"{SERVER_SECRET}\"\n    secret-key = \"{SERVER_SECRET}\"\n");
        assert_eq!(parse_error(&secrets), (4, "a second secret-key"));
        match parse(Path::new("x.key"), b"metadata\n    a = \xff\n") {
            Err(CertError::Parse { line: 2, reason: "not UTF-8 text", .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_missing_bad_and_mismatched_keys() {
        assert!(matches!(parse_str(""), Err(CertError::MissingPublicKey { .. })));
        assert!(matches!(parse_str("metadata\n"), Err(CertError::MissingPublicKey { .. })));
        // pyzmq's reader would take a public-key anywhere; czmq's and ours only in `curve`.
        let outside = format!("public-key = \"{SERVER_PUBLIC}\"\n");
        assert!(matches!(parse_str(&outside), Err(CertError::MissingPublicKey { .. })));
        let short = "curve\n    public-key = \"abc\"\n";
        assert!(matches!(
            parse_str(short),
            Err(CertError::BadPublicKey { source: KeyError::BadZ85Length(3), .. })
        ));
        let bad_secret = format!("curve\n    public-key = \"{SERVER_PUBLIC}\"\n    secret-key = \"CB.VWmoctMCt/v:Ek=}}g8S13Rb$x3imC2mA=E(B~\"\n");
        let err = parse_str(&bad_secret).unwrap_err();
        assert!(matches!(err, CertError::BadSecretKey { .. }), "{err:?}");
        assert!(!err.to_string().contains("CB.VW") && !err.to_string().contains('~'), "{err}");
        let mismatch =
            format!("curve\n    public-key = \"{CLIENT_PUBLIC}\"\n    secret-key = \"{SERVER_SECRET}\"\n");
        assert!(matches!(parse_str(&mismatch), Err(CertError::KeyMismatch { .. })));
        let empty_secret = format!("curve\n    public-key = \"{SERVER_PUBLIC}\"\n    secret-key = \"\"\n");
        assert_eq!(parse_str(&empty_secret).unwrap().secret, None);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", server());
        assert!(!shown.contains(SERVER_SECRET), "{shown}");
        assert!(shown.contains(SERVER_PUBLIC), "{shown}");
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = TestDir::new("round-trip");
        let mut cert = server();
        cert.metadata = vec![
            ("name".into(), "the \"server\"".into()),
            ("owner".into(), "ops # team".into()),
            ("empty".into(), String::new()),
        ];
        cert.save_public(dir.join("s.key")).unwrap();
        cert.save_secret(dir.join("s.key_secret")).unwrap();

        let public_text = fs::read_to_string(dir.join("s.key")).unwrap();
        assert!(!public_text.contains(SERVER_SECRET));
        assert!(!public_text.contains("secret-key"));
        assert!(public_text.starts_with("#   ****  Generated on "), "{public_text}");
        assert!(public_text.contains("#   ZeroMQ CURVE Public Certificate\n"), "{public_text}");
        assert!(public_text.contains(&format!("curve\n    public-key = \"{SERVER_PUBLIC}\"\n")));
        let secret_text = fs::read_to_string(dir.join("s.key_secret")).unwrap();
        assert!(secret_text.contains("#   ZeroMQ CURVE **Secret** Certificate\n"), "{secret_text}");
        assert!(secret_text.contains(&format!("    secret-key = \"{SERVER_SECRET}\"\n")));
        assert!(secret_text.contains("    name = 'the \"server\"'\n"), "{secret_text}");

        assert_eq!(Certificate::load(dir.join("s.key")).unwrap(), cert.to_public());
        assert_eq!(Certificate::load(dir.join("s.key_secret")).unwrap(), cert);
        assert_eq!(load_secret(dir.join("s.key_secret")).unwrap(), cert);
        assert_eq!(cert.key_pair().unwrap().public, cert.public);
        // No temporary files left behind.
        let mut names: Vec<_> = fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["s.key", "s.key_secret"]);
    }

    #[test]
    fn refuses_to_save_metadata_it_cannot_write_faithfully() {
        let dir = TestDir::new("bad-metadata");
        for (name, value) in [
            ("", "x"),
            ("has space", "x"),
            ("/lead", "x"),
            ("trail/", "x"),
            ("public-key-owner", "x"),
            ("secret-key", "x"),
            ("ok", "two\nlines"),
            ("ok", "cr\r"),
            ("ok", "both \" and '"),
        ] {
            let mut cert = server();
            cert.metadata = vec![(name.into(), value.into())];
            let err = cert.save_public(dir.join("m.key")).unwrap_err();
            assert!(matches!(err, CertError::BadMetadata { .. }), "{name:?} {value:?}: {err:?}");
            assert_eq!(err.path(), dir.join("m.key"));
        }
        assert!(!dir.join("m.key").exists());
    }

    #[test]
    fn save_secret_needs_a_secret() {
        let dir = TestDir::new("no-secret");
        let err = server().to_public().save_secret(dir.join("p.key_secret")).unwrap_err();
        assert!(matches!(err, CertError::MissingSecretKey { .. }), "{err:?}");
        assert!(!dir.join("p.key_secret").exists());
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_0600_even_over_a_looser_file() {
        let dir = TestDir::new("modes");
        let path = dir.write("s.key_secret", "old");
        set_mode(&path, 0o644);
        server().save_secret(&path).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        check_secret_file_permissions(&path).unwrap();
        server().save_public(dir.join("s.key")).unwrap();
        assert_eq!(mode_of(&dir.join("s.key")) & 0o600, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn saving_replaces_a_symlink_instead_of_following_it() {
        let dir = TestDir::new("symlink");
        let target = dir.write("target", "untouched");
        std::os::unix::fs::symlink(&target, dir.join("s.key_secret")).unwrap();
        server().save_secret(dir.join("s.key_secret")).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
        assert_eq!(load_secret(dir.join("s.key_secret")).unwrap(), server());
    }

    #[cfg(unix)]
    #[test]
    fn insecure_secret_files_are_refused() {
        let dir = TestDir::new("insecure");
        let path = dir.join("s.key_secret");
        server().save_secret(&path).unwrap();
        for mode in [0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o700 | 0o070] {
            set_mode(&path, mode);
            match check_secret_file_permissions(&path) {
                Err(CertError::InsecurePermissions { path: p, mode: m }) => {
                    assert_eq!((p.as_path(), m), (path.as_path(), mode));
                }
                other => panic!("{mode:o}: {other:?}"),
            }
            let err = load_secret(&path).unwrap_err();
            assert!(matches!(err, CertError::InsecurePermissions { .. }), "{err:?}");
            assert!(err.to_string().contains(&format!("{mode:04o}")), "{err}");
            assert!(err.to_string().contains("s.key_secret"), "{err}");
            // Plain loading does not check (a public certificate may be world-readable).
            assert_eq!(Certificate::load(&path).unwrap(), server());
        }
        for mode in [0o600, 0o400, 0o700] {
            set_mode(&path, mode);
            check_secret_file_permissions(&path).unwrap();
            assert_eq!(load_secret(&path).unwrap(), server());
        }
        set_mode(&path, 0o600);
        let err = check_secret_file_permissions(dir.join("missing")).unwrap_err();
        assert!(matches!(err, CertError::Io { .. }) && err.path().ends_with("missing"), "{err:?}");
    }

    #[test]
    fn load_secret_refuses_a_public_certificate() {
        let dir = TestDir::new("public-as-secret");
        let path = dir.join("s.key");
        server().save_public(&path).unwrap();
        #[cfg(unix)]
        set_mode(&path, 0o600);
        let err = load_secret(&path).unwrap_err();
        assert!(matches!(err, CertError::MissingSecretKey { .. }), "{err:?}");
    }

    #[test]
    fn refuses_hostile_files() {
        let dir = TestDir::new("hostile");
        let big = dir.write("big.key", &format!("{PYZMQ_PUBLIC}{}", "#".repeat(64 * 1024)));
        let err = Certificate::load(&big).unwrap_err();
        assert!(matches!(err, CertError::TooLarge { max: MAX_FILE_LEN, .. }), "{err:?}");
        assert!(err.to_string().contains("big.key"), "{err}");
        // Exactly the limit is fine (comments pad it).
        let padding = usize::try_from(MAX_FILE_LEN).unwrap() - PYZMQ_PUBLIC.len() - 1;
        let limit = dir.write("limit.key", &format!("{PYZMQ_PUBLIC}#{}", "x".repeat(padding)));
        assert_eq!(fs::metadata(&limit).unwrap().len(), MAX_FILE_LEN);
        Certificate::load(&limit).unwrap();

        let err = Certificate::load(&dir.0).unwrap_err();
        assert!(matches!(err, CertError::NotAFile { .. }), "{err:?}");
        #[cfg(unix)]
        {
            let err = Certificate::load("/dev/zero").unwrap_err();
            assert!(matches!(err, CertError::NotAFile { .. }), "{err:?}");
        }
        let err = Certificate::load(dir.join("missing.key")).unwrap_err();
        assert!(matches!(err, CertError::Io { action: "read", .. }), "{err:?}");
        assert!(err.to_string().contains("missing.key"), "{err}");
        let binary = dir.join("binary.key");
        fs::write(&binary, [0u8, 0xff, 0xfe, b'\n', 0x80]).unwrap();
        let err = Certificate::load(&binary).unwrap_err();
        assert!(matches!(err, CertError::Parse { line: 1, .. }), "{err:?}");
    }

    #[test]
    fn create_certificates_writes_a_pair() {
        let dir = TestDir::new("create");
        let (public, secret) = create_certificates(&dir.0, "client").unwrap();
        assert_eq!(public, dir.join("client.key"));
        assert_eq!(secret, dir.join("client.key_secret"));
        let secret_cert = load_secret(&secret).unwrap();
        let public_cert = Certificate::load(&public).unwrap();
        assert_eq!(public_cert, secret_cert.to_public());
        assert_eq!(secret_cert.secret.as_ref().unwrap().public_key(), public_cert.public);
        #[cfg(unix)]
        assert_eq!(mode_of(&secret), 0o600);

        // A second pair is a new key.
        let (public2, _) = create_certificates(&dir.0, "client").unwrap();
        assert_ne!(Certificate::load(public2).unwrap().public, public_cert.public);

        for bad in ["", ".", "..", "a/b", "/abs", "nul\0"] {
            let err = create_certificates(&dir.0, bad).unwrap_err();
            assert!(matches!(err, CertError::BadName { .. }), "{bad:?}: {err:?}");
        }
        let err = create_certificates(dir.join("missing"), "x").unwrap_err();
        assert!(matches!(err, CertError::Io { .. }), "{err:?}");
    }

    #[test]
    fn load_public_keys_reads_every_public_certificate() {
        let dir = TestDir::new("allow");
        let (_, _) = create_certificates(&dir.0, "a").unwrap();
        let (_, _) = create_certificates(&dir.0, "b").unwrap();
        let a = Certificate::load(dir.join("a.key")).unwrap().public;
        let b = Certificate::load(dir.join("b.key")).unwrap().public;
        // A duplicate, a hidden file, other extensions and a directory are not read.
        fs::copy(dir.join("a.key"), dir.join("c.key")).unwrap();
        dir.write(".hidden.key", "garbage");
        dir.write("notes.txt", "garbage");
        dir.write("x.key.bak", "garbage");
        fs::create_dir(dir.join("sub.key")).unwrap();
        assert_eq!(load_public_keys(&dir.0).unwrap(), [a, b]);

        dir.write("broken.key", "curve\n    public-key = \"short\"\n");
        let err = load_public_keys(&dir.0).unwrap_err();
        assert!(matches!(err, CertError::BadPublicKey { .. }), "{err:?}");
        assert_eq!(err.path(), dir.join("broken.key"));
        assert!(err.to_string().contains("broken.key"), "{err}");

        let empty = TestDir::new("allow-empty");
        assert_eq!(load_public_keys(&empty.0).unwrap(), []);
        let err = load_public_keys(dir.join("missing")).unwrap_err();
        assert!(matches!(err, CertError::Io { action: "read directory", .. }), "{err:?}");
    }

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_timestamp(UNIX_EPOCH + Duration::from_secs(1_735_689_599)), "2024-12-31 23:59:59 UTC");
        assert_eq!(utc_timestamp(UNIX_EPOCH - Duration::from_secs(1)), "1970-01-01 00:00:00 UTC");
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(Path::new("p.key"), &bytes);
        }

        #[test]
        fn parse_never_panics_on_zpl_like_text(
            lines in proptest::collection::vec(
                "( {0,9})(curve|metadata|public-key|secret-key|[a-z/]{1,3})?( ?= ?)?(\"|')?[ -~é\t]{0,12}(\"|')?( #.*)?",
                0..12,
            )
        ) {
            let _ = parse_str(&lines.join("\n"));
        }

        #[test]
        fn saved_metadata_round_trips(
            entries in proptest::collection::vec(("[a-z][a-z0-9_.-]{0,8}", "[ -~é]{0,16}"), 0..5)
        ) {
            let mut cert = server();
            cert.metadata = entries;
            match cert.render(Path::new("m.key_secret"), true) {
                Ok(text) => prop_assert_eq!(parse_str(&text).unwrap(), cert),
                Err(CertError::BadMetadata { .. }) => {
                    prop_assert!(cert.metadata.iter().any(|(_, v)| v.contains('"') && v.contains('\'')));
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
