//! `relay --healthcheck [URL]`: one HTTP GET of the admin endpoint's `/readyz`, for Docker's
//! `HEALTHCHECK` (the image is `FROM scratch`: no shell, no curl, so the relay binary probes itself).
//!
//! A tiny HTTP/1.1 client over a blocking [`TcpStream`] with a deadline: the probe is one request to
//! a process on the same host, so pulling in an HTTP client crate (and its TLS stack) would buy
//! nothing. Only `http://` URLs; the answer's status line is all that matters (200 = ready).
//!
//! With no URL, [`default_url`] derives one from the configuration file: `admin_address` when it is
//! set (empty = the admin endpoint is off, which makes the probe fail with that reason), else the
//! admin endpoint's default, the host of `bind_address` at port 9559. A wildcard host (`*`,
//! `0.0.0.0`, `::`) is probed on loopback.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

/// The admin endpoint's default port.
pub const DEFAULT_ADMIN_PORT: u16 = 9559;
/// The URL probed when nothing else names one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9559/readyz";
/// The whole probe (connect, send, read) must finish within this.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of the answer that is read: the status line and a short body are all the probe uses.
const MAX_ANSWER: usize = 8 * 1024;

/// Why a probe did not find the relay ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The URL is not `http://host[:port][/path]`.
    BadUrl(String),
    /// The admin endpoint is turned off in the configuration (`admin_address = ""`).
    AdminOff,
    /// The host did not resolve, or no address accepted the connection.
    Connect(String),
    /// Sending the request or reading the answer failed (including the deadline passing).
    Io(String),
    /// The answer is not HTTP.
    NotHttp(String),
    /// An HTTP answer other than 200: its status line and the first line of its body.
    Status {
        /// The numeric status.
        code: u16,
        /// The status line and the body's first line, shortened.
        detail: String,
    },
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::BadUrl(e) => write!(f, "bad URL: {e}"),
            ProbeError::AdminOff => write!(f, "the admin endpoint is off (admin_address = \"\")"),
            ProbeError::Connect(e) => write!(f, "cannot connect: {e}"),
            ProbeError::Io(e) => write!(f, "no answer: {e}"),
            ProbeError::NotHttp(e) => write!(f, "not an HTTP answer: {e}"),
            ProbeError::Status { code, detail } => write!(f, "not ready (HTTP {code}): {detail}"),
        }
    }
}

impl std::error::Error for ProbeError {}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    /// Host as written (an IPv6 address keeps its brackets), for the `Host` header.
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Url, ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::BadUrl(format!("{url:?}: only http:// URLs are probed")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/readyz"),
    };
    let (host, port) =
        split_host_port(authority).ok_or_else(|| ProbeError::BadUrl(format!("{url:?}: bad host or port")))?;
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(ProbeError::BadUrl(format!("{url:?}: spaces or control characters in the path")));
    }
    Ok(Url { host: host.to_owned(), port: port.unwrap_or(80), path: path.to_owned() })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → (host, port). None when malformed.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let host = &authority[..=end];
        match &authority[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'@') {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
        None => None,
    };
    Some((host, port))
}

/// A host to dial for a host that was bound: wildcards become loopback.
fn dialable(host: &str) -> &str {
    match host {
        "*" | "0.0.0.0" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        h => h,
    }
}

/// The URL to probe when none is given, from the configuration file at `config_path` (read as TOML;
/// a file that is absent or cannot be read or parsed gives [`DEFAULT_URL`], since the relay itself
/// would refuse to start on a broken file and the probe then fails to connect anyway).
///
/// # Errors
///
/// [`ProbeError::AdminOff`] when the file sets `admin_address = ""`; [`ProbeError::BadUrl`] when
/// `admin_address` or `bind_address` has no usable host.
pub fn default_url(config_path: &Path) -> Result<String, ProbeError> {
    // A file the relay itself accepts (TOML or YAML): its own idea of the admin address.
    if let Ok((config, _)) = crate::Config::load(config_path, true) {
        let Some(address) = config.admin_address() else { return Err(ProbeError::AdminOff) };
        if let Some((host, port)) = split_host_port(&address) {
            return Ok(format!("http://{}:{}/readyz", dialable(host), port.unwrap_or(DEFAULT_ADMIN_PORT)));
        }
    }
    // Otherwise read what can be read of it, leniently.
    let Ok(text) = std::fs::read_to_string(config_path) else { return Ok(DEFAULT_URL.to_owned()) };
    let Ok(table) = text.parse::<toml::Table>() else { return Ok(DEFAULT_URL.to_owned()) };
    if let Some(admin) = table.get("admin_address").and_then(toml::Value::as_str) {
        let admin = admin.trim();
        if admin.is_empty() {
            return Err(ProbeError::AdminOff);
        }
        // Accept the forms an operator might write: host:port, tcp://host:port, http://host:port.
        let authority =
            admin.strip_prefix("tcp://").or_else(|| admin.strip_prefix("http://")).unwrap_or(admin);
        let authority = authority.trim_end_matches('/');
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| ProbeError::BadUrl(format!("admin_address {admin:?}: expected host:port")))?;
        return Ok(format!("http://{}:{}/readyz", dialable(host), port.unwrap_or(DEFAULT_ADMIN_PORT)));
    }
    if let Some(bind) = table.get("bind_address").and_then(toml::Value::as_str) {
        if let Some(host) = bind.strip_prefix("tcp://").filter(|h| !h.is_empty()) {
            return Ok(format!("http://{}:{DEFAULT_ADMIN_PORT}/readyz", dialable(host)));
        }
    }
    Ok(DEFAULT_URL.to_owned())
}

/// GETs `url` and returns the answer's status line when it is HTTP 200.
///
/// # Errors
///
/// A [`ProbeError`] saying why the relay is not (known to be) ready: a bad URL, no connection, no
/// answer within `timeout`, an answer that is not HTTP, or a status other than 200.
pub fn probe(url: &str, timeout: Duration) -> Result<String, ProbeError> {
    let deadline = Instant::now() + timeout;
    let url = parse_url(url)?;
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let addrs = (host, url.port)
        .to_socket_addrs()
        .map_err(|e| ProbeError::Connect(format!("{}:{}: {e}", url.host, url.port)))?;
    let mut last = format!("{}:{}: no address", url.host, url.port);
    let mut stream = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last = format!("{addr}: timed out");
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(ProbeError::Connect(last))?;
    let io = |e: std::io::Error| ProbeError::Io(e.to_string());
    let left = |d: Instant| Some(d.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    stream.set_write_timeout(left(deadline)).map_err(io)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: relay-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path, url.host, url.port
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut answer = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    loop {
        stream.set_read_timeout(left(deadline)).map_err(io)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                // Enough to judge: the whole head and some body, or the cap.
                if answer.len() >= MAX_ANSWER {
                    answer.truncate(MAX_ANSWER);
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Timed out or reset after the status line arrived: judge by what came.
            Err(_) if answer.windows(2).any(|w| w == b"\r\n") => break,
            Err(e) => return Err(io(e)),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    judge(&answer)
}

/// The verdict on an answer's bytes.
fn judge(answer: &[u8]) -> Result<String, ProbeError> {
    let text = String::from_utf8_lossy(answer);
    let status_line = text.split("\r\n").next().unwrap_or_default();
    let shown = shorten(status_line);
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(ProbeError::NotHttp(if shown.is_empty() { "empty answer".to_owned() } else { shown }));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ProbeError::NotHttp(shown));
    }
    let Ok(code) = code.parse::<u16>() else { return Err(ProbeError::NotHttp(shown)) };
    if code == 200 {
        return Ok(status_line.to_owned());
    }
    // The body says what is missing (readiness); its first non-empty line is the reason.
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    let first = body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let detail = if first.is_empty() { shown } else { format!("{shown}: {}", shorten(first)) };
    Err(ProbeError::Status { code, detail })
}

/// At most 200 characters of one line, control characters replaced.
fn shorten(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:9559/readyz").unwrap(),
            Url { host: "127.0.0.1".into(), port: 9559, path: "/readyz".into() }
        );
        assert_eq!(
            parse_url("http://relay").unwrap(),
            Url { host: "relay".into(), port: 80, path: "/readyz".into() }
        );
        assert_eq!(
            parse_url("http://[::1]:9/x").unwrap(),
            Url { host: "[::1]".into(), port: 9, path: "/x".into() }
        );
        for bad in [
            "https://x/",
            "x:1",
            "http://:1/",
            "http://h:0/",
            "http://h:99999/",
            "http://h:1/a b",
            "http://[::1/",
        ] {
            assert!(matches!(parse_url(bad), Err(ProbeError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn judges_status_lines() {
        assert_eq!(judge(b"HTTP/1.1 200 OK\r\n\r\nready\n").unwrap(), "HTTP/1.1 200 OK");
        let e = judge(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 20\r\n\r\n\nupstream: not connected\n",
        )
        .unwrap_err();
        assert_eq!(
            e,
            ProbeError::Status {
                code: 503,
                detail: "HTTP/1.1 503 Service Unavailable: upstream: not connected".into()
            }
        );
        assert!(matches!(judge(b""), Err(ProbeError::NotHttp(_))));
        assert!(matches!(judge(b"SSH-2.0-OpenSSH\r\n"), Err(ProbeError::NotHttp(_))));
        assert!(matches!(judge(b"HTTP/1.1 abc\r\n"), Err(ProbeError::NotHttp(_))));
    }

    #[test]
    fn derives_the_url_from_the_configuration() {
        let dir = std::env::temp_dir().join(format!("relay-healthcheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        let url = |text: &str| {
            std::fs::write(&file, text).unwrap();
            default_url(&file)
        };
        assert_eq!(url("").unwrap(), DEFAULT_URL);
        assert_eq!(url("not = [toml").unwrap(), DEFAULT_URL);
        assert_eq!(url("bind_address = \"tcp://*\"").unwrap(), DEFAULT_URL);
        assert_eq!(url("bind_address = \"tcp://10.1.2.3\"").unwrap(), "http://10.1.2.3:9559/readyz");
        assert_eq!(url("admin_address = \"0.0.0.0:9000\"").unwrap(), "http://127.0.0.1:9000/readyz");
        assert_eq!(url("admin_address = \"tcp://[::]:9000\"").unwrap(), "http://[::1]:9000/readyz");
        assert_eq!(
            url("admin_address = \"relay:81\"\nbind_address = \"tcp://x\"").unwrap(),
            "http://relay:81/readyz"
        );
        assert_eq!(url("admin_address = \"\"").unwrap_err(), ProbeError::AdminOff);
        assert!(matches!(url("admin_address = \"a:b:c\""), Err(ProbeError::BadUrl(_))));
        assert_eq!(default_url(&dir.join("absent.toml")).unwrap(), DEFAULT_URL);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
