//! Endpoints as libzmq spells them: `tcp://host:port`, `ipc://path` and `inproc://name`.
//!
//! [`Endpoint`] is the parsed form; [`FromStr`] parses it and [`Display`](fmt::Display) writes it back
//! in the same spelling, so `endpoint.to_string().parse()` gives the same value.
//!
//! ```
//! use zmtp::runtime::endpoint::Endpoint;
//!
//! let endpoint: Endpoint = "tcp://[::1]:5555".parse().unwrap();
//! assert_eq!(endpoint, Endpoint::Tcp { host: "::1".into(), port: Some(5555) });
//! assert_eq!(endpoint.to_string(), "tcp://[::1]:5555");
//!
//! let err = "pgm://eth0;239.192.1.1:5555".parse::<Endpoint>().unwrap_err();
//! assert!(err.to_string().contains("pgm"));
//! ```

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::str::FromStr;

/// A ZeroMQ endpoint as libzmq spells it.
///
/// Parsing is purely syntactic: nothing is resolved or checked against the file system. Whether an
/// endpoint suits a bind or a connect (`*` host and `*` port are bind-only) is decided when it is
/// used.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `tcp://host:port`.
    ///
    /// `host` is `*` (all interfaces, bind only), an IPv4 address, an IPv6 address (written in
    /// brackets, `tcp://[::1]:5555`, but stored here *without* them: `"::1"`) or a DNS name (an
    /// interface name such as `eth0` is treated as a DNS name). `port` is `None` for `*` (an ephemeral
    /// port, bind only); `Some(0)` also asks the OS for an ephemeral port when binding.
    Tcp {
        /// `*`, an IPv4 address, an unbracketed IPv6 address or a DNS name; never empty.
        host: String,
        /// The port; `None` is `*`.
        port: Option<u16>,
    },
    /// `ipc://path`: a Unix domain socket at a filesystem path.
    ///
    /// Two spellings are special, as in libzmq: `ipc://@name` is `name` in the Linux abstract
    /// namespace (no file; Linux and Android only, refused elsewhere when used), and `ipc://*` asks
    /// `bind` to pick a fresh path in the temporary directory.
    Ipc(PathBuf),
    /// `inproc://name`: an in-process connection between sockets of the same process. Never empty.
    Inproc(String),
}

impl Endpoint {
    /// The transport's name as it appears before `://`: `"tcp"`, `"ipc"` or `"inproc"`.
    pub fn transport(&self) -> &'static str {
        match self {
            Endpoint::Tcp { .. } => "tcp",
            Endpoint::Ipc(_) => "ipc",
            Endpoint::Inproc(_) => "inproc",
        }
    }
}

/// Why a string is not a valid [`Endpoint`]. Every message quotes the endpoint and says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// There is no `transport://` prefix.
    #[error("invalid endpoint {endpoint:?}: expected transport://address, e.g. tcp://127.0.0.1:5555")]
    MissingTransport {
        /// The endpoint as given.
        endpoint: String,
    },
    /// A transport libzmq knows (`pgm`, `epgm`, `norm`, `udp`, `tipc`, `vmci`, `ws`, `wss`) but this
    /// crate does not implement.
    #[error(
        "invalid endpoint {endpoint:?}: transport {transport:?} is not supported \
         (supported transports: tcp, ipc, inproc)"
    )]
    UnsupportedTransport {
        /// The endpoint as given.
        endpoint: String,
        /// The transport before `://`.
        transport: String,
    },
    /// A transport nobody knows.
    #[error(
        "invalid endpoint {endpoint:?}: unknown transport {transport:?} \
         (supported transports: tcp, ipc, inproc)"
    )]
    UnknownTransport {
        /// The endpoint as given.
        endpoint: String,
        /// The transport before `://`.
        transport: String,
    },
    /// A tcp endpoint without `:port` (or with an empty port).
    #[error("invalid endpoint {endpoint:?}: missing port (expected tcp://host:port or tcp://host:*)")]
    MissingPort {
        /// The endpoint as given.
        endpoint: String,
    },
    /// The port is neither a decimal number nor `*`.
    #[error("invalid endpoint {endpoint:?}: port {port:?} is not a number or *")]
    InvalidPort {
        /// The endpoint as given.
        endpoint: String,
        /// The port as given.
        port: String,
    },
    /// The port is a number above 65535.
    #[error("invalid endpoint {endpoint:?}: port {port} is out of range (0 to 65535)")]
    PortOutOfRange {
        /// The endpoint as given.
        endpoint: String,
        /// The port as given.
        port: String,
    },
    /// A tcp endpoint with nothing before `:port`.
    #[error("invalid endpoint {endpoint:?}: empty host (use * for all interfaces)")]
    EmptyHost {
        /// The endpoint as given.
        endpoint: String,
    },
    /// A tcp host that is not `*`, an address or a plausible DNS name.
    #[error("invalid endpoint {endpoint:?}: invalid host {host:?}: {reason}")]
    InvalidHost {
        /// The endpoint as given.
        endpoint: String,
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// libzmq's `tcp://source_host:port;destination_host:port` form, which this crate does not support.
    #[error(
        "invalid endpoint {endpoint:?}: the source-address form tcp://source:port;host:port \
         is not supported"
    )]
    SourceAddressUnsupported {
        /// The endpoint as given.
        endpoint: String,
    },
    /// `ipc://` with no path (or `ipc://@` with no abstract name).
    #[error("invalid endpoint {endpoint:?}: empty path")]
    EmptyPath {
        /// The endpoint as given.
        endpoint: String,
    },
    /// An ipc path containing a NUL byte, which no socket address can hold.
    #[error("invalid endpoint {endpoint:?}: the path contains a NUL byte")]
    NulInPath {
        /// The endpoint as given.
        endpoint: String,
    },
    /// `inproc://` with no name.
    #[error("invalid endpoint {endpoint:?}: empty inproc name")]
    EmptyName {
        /// The endpoint as given.
        endpoint: String,
    },
}

/// Transports libzmq implements and this crate does not.
const UNSUPPORTED_TRANSPORTS: &[&str] = &["pgm", "epgm", "norm", "udp", "tipc", "vmci", "ws", "wss"];

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let endpoint = || s.to_owned();
        let Some((transport, address)) = s.split_once("://") else {
            return Err(EndpointError::MissingTransport { endpoint: endpoint() });
        };
        match transport {
            "tcp" => parse_tcp(s, address),
            "ipc" => {
                if address.is_empty() || address == "@" {
                    Err(EndpointError::EmptyPath { endpoint: endpoint() })
                } else if address.contains('\0') {
                    Err(EndpointError::NulInPath { endpoint: endpoint() })
                } else {
                    Ok(Endpoint::Ipc(PathBuf::from(address)))
                }
            }
            "inproc" if address.is_empty() => Err(EndpointError::EmptyName { endpoint: endpoint() }),
            "inproc" => Ok(Endpoint::Inproc(address.to_owned())),
            "" => Err(EndpointError::MissingTransport { endpoint: endpoint() }),
            t if UNSUPPORTED_TRANSPORTS.contains(&t) => {
                Err(EndpointError::UnsupportedTransport { endpoint: endpoint(), transport: t.to_owned() })
            }
            t => Err(EndpointError::UnknownTransport { endpoint: endpoint(), transport: t.to_owned() }),
        }
    }
}

/// Parses the part of `tcp://` endpoint `s` after the `://`.
fn parse_tcp(s: &str, address: &str) -> Result<Endpoint, EndpointError> {
    let endpoint = || s.to_owned();
    if address.contains(';') {
        return Err(EndpointError::SourceAddressUnsupported { endpoint: endpoint() });
    }
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        // `[v6]:port`: the port separator is the first `:` after the closing bracket.
        let Some((inner, rest)) = bracketed.split_once(']') else {
            return Err(EndpointError::InvalidHost {
                endpoint: endpoint(),
                host: address.to_owned(),
                reason: "missing closing bracket",
            });
        };
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(EndpointError::InvalidHost {
                endpoint: endpoint(),
                host: format!("[{inner}]"),
                reason: "not an IPv6 address (scope ids are not supported)",
            });
        }
        let port = match rest.strip_prefix(':') {
            Some(port) => port,
            None if rest.is_empty() => return Err(EndpointError::MissingPort { endpoint: endpoint() }),
            None => {
                return Err(EndpointError::InvalidHost {
                    endpoint: endpoint(),
                    host: address.to_owned(),
                    reason: "unexpected characters after the closing bracket",
                })
            }
        };
        (inner, port)
    } else {
        let Some((host, port)) = address.rsplit_once(':') else {
            return Err(EndpointError::MissingPort { endpoint: endpoint() });
        };
        if host.is_empty() {
            return Err(EndpointError::EmptyHost { endpoint: endpoint() });
        }
        if host.contains(':') {
            return Err(EndpointError::InvalidHost {
                endpoint: endpoint(),
                host: host.to_owned(),
                reason: "IPv6 addresses must be written in brackets, e.g. tcp://[::1]:5555",
            });
        }
        if host != "*" && !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(EndpointError::InvalidHost {
                endpoint: endpoint(),
                host: host.to_owned(),
                reason: "a host is *, an IPv4 address, a bracketed IPv6 address or a DNS name",
            });
        }
        (host, port)
    };
    let port = parse_port(s, port)?;
    Ok(Endpoint::Tcp { host: host.to_owned(), port })
}

/// Parses a tcp port: `*` is `None`, otherwise a decimal number from 0 to 65535.
fn parse_port(s: &str, port: &str) -> Result<Option<u16>, EndpointError> {
    if port == "*" {
        return Ok(None);
    }
    if port.is_empty() {
        return Err(EndpointError::MissingPort { endpoint: s.to_owned() });
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointError::InvalidPort { endpoint: s.to_owned(), port: port.to_owned() });
    }
    // All digits, so the only way to fail is being too large (however many digits there are).
    port.parse::<u16>()
        .map(Some)
        .map_err(|_| EndpointError::PortOutOfRange { endpoint: s.to_owned(), port: port.to_owned() })
}

impl fmt::Display for Endpoint {
    /// Writes the endpoint as libzmq spells it; IPv6 hosts get their brackets back. A non-UTF-8 ipc
    /// path (which parsing never produces) is written lossily.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => {
                if host.contains(':') {
                    write!(f, "tcp://[{host}]:")?;
                } else {
                    write!(f, "tcp://{host}:")?;
                }
                match port {
                    Some(port) => write!(f, "{port}"),
                    None => f.write_str("*"),
                }
            }
            Endpoint::Ipc(path) => write!(f, "ipc://{}", path.display()),
            Endpoint::Inproc(name) => write!(f, "inproc://{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: Option<u16>) -> Endpoint {
        Endpoint::Tcp { host: host.into(), port }
    }

    fn err(s: &str) -> EndpointError {
        s.parse::<Endpoint>().unwrap_err()
    }

    #[test]
    fn round_trips_every_form() {
        let cases = [
            ("tcp://127.0.0.1:5555", tcp("127.0.0.1", Some(5555))),
            ("tcp://[::1]:5555", tcp("::1", Some(5555))),
            ("tcp://[::]:*", tcp("::", None)),
            ("tcp://[::ffff:10.0.0.1]:1", tcp("::ffff:10.0.0.1", Some(1))),
            ("tcp://*:*", tcp("*", None)),
            ("tcp://*:5555", tcp("*", Some(5555))),
            ("tcp://127.0.0.1:*", tcp("127.0.0.1", None)),
            ("tcp://localhost:0", tcp("localhost", Some(0))),
            ("tcp://eth0:65535", tcp("eth0", Some(65535))),
            ("tcp://my-host_1.example.com:80", tcp("my-host_1.example.com", Some(80))),
            ("ipc:///tmp/x.sock", Endpoint::Ipc("/tmp/x.sock".into())),
            ("ipc://relative/x.sock", Endpoint::Ipc("relative/x.sock".into())),
            ("ipc://@abstract", Endpoint::Ipc("@abstract".into())),
            ("ipc://*", Endpoint::Ipc("*".into())),
            ("inproc://name", Endpoint::Inproc("name".into())),
            ("inproc://with:odd/chars and spaces", Endpoint::Inproc("with:odd/chars and spaces".into())),
        ];
        for (text, expected) in cases {
            let parsed: Endpoint = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed, expected, "{text}");
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.to_string().parse::<Endpoint>().unwrap(), parsed);
        }
    }

    #[test]
    fn distinguishes_port_zero_from_star() {
        assert_eq!("tcp://*:0".parse::<Endpoint>().unwrap(), tcp("*", Some(0)));
        assert_eq!("tcp://*:*".parse::<Endpoint>().unwrap(), tcp("*", None));
        assert_ne!(tcp("*", Some(0)), tcp("*", None));
    }

    #[test]
    fn names_transports() {
        assert_eq!(tcp("h", Some(1)).transport(), "tcp");
        assert_eq!(Endpoint::Ipc("p".into()).transport(), "ipc");
        assert_eq!(Endpoint::Inproc("n".into()).transport(), "inproc");
    }

    #[test]
    fn rejects_missing_transport() {
        assert!(matches!(err("127.0.0.1:5555"), EndpointError::MissingTransport { .. }));
        assert!(matches!(err("://x"), EndpointError::MissingTransport { .. }));
        assert!(matches!(err(""), EndpointError::MissingTransport { .. }));
    }

    #[test]
    fn rejects_unsupported_and_unknown_transports() {
        let e = err("pgm://eth0;239.192.1.1:5555");
        assert_eq!(
            e,
            EndpointError::UnsupportedTransport {
                endpoint: "pgm://eth0;239.192.1.1:5555".into(),
                transport: "pgm".into()
            }
        );
        assert!(e.to_string().contains("\"pgm\"") && e.to_string().contains("not supported"), "{e}");
        for t in ["epgm", "norm", "udp", "tipc", "vmci", "ws", "wss"] {
            assert!(matches!(err(&format!("{t}://x:1")), EndpointError::UnsupportedTransport { .. }), "{t}");
        }
        let e = err("http://example.com:80");
        assert!(matches!(e, EndpointError::UnknownTransport { ref transport, .. } if transport == "http"));
        assert!(e.to_string().contains("http://example.com:80"), "{e}");
        // Transports are case-sensitive, as in libzmq.
        assert!(matches!(err("TCP://127.0.0.1:1"), EndpointError::UnknownTransport { .. }));
    }

    #[test]
    fn rejects_missing_port() {
        for s in ["tcp://127.0.0.1", "tcp://127.0.0.1:", "tcp://[::1]", "tcp://[::1]:", "tcp://*"] {
            let e = err(s);
            assert!(matches!(e, EndpointError::MissingPort { .. }), "{s}: {e:?}");
            assert!(e.to_string().contains(s), "{e}");
        }
    }

    #[test]
    fn rejects_port_out_of_range() {
        for s in ["tcp://127.0.0.1:65536", "tcp://h:99999999999999999999999", "tcp://[::1]:70000"] {
            let e = err(s);
            assert!(matches!(e, EndpointError::PortOutOfRange { .. }), "{s}: {e:?}");
            assert!(e.to_string().contains("out of range"), "{e}");
        }
    }

    #[test]
    fn rejects_non_numeric_port() {
        for s in ["tcp://h:http", "tcp://h:+1", "tcp://h:-1", "tcp://h:1 ", "tcp://h:**"] {
            assert!(matches!(err(s), EndpointError::InvalidPort { .. }), "{s}");
        }
    }

    #[test]
    fn rejects_empty_host() {
        let e = err("tcp://:5555");
        assert_eq!(e, EndpointError::EmptyHost { endpoint: "tcp://:5555".into() });
        assert!(e.to_string().contains("empty host"), "{e}");
    }

    #[test]
    fn rejects_bad_hosts() {
        for s in [
            "tcp://::1:5555",
            "tcp://[::1:5555",
            "tcp://[not-v6]:5555",
            "tcp://[127.0.0.1]:5555",
            "tcp://[fe80::1%eth0]:5555",
            "tcp://[::1]x:5555",
            "tcp://host name:5555",
            "tcp://a/b:5555",
            "tcp://ünï:5555",
        ] {
            let e = err(s);
            assert!(matches!(e, EndpointError::InvalidHost { .. }), "{s}: {e:?}");
            assert!(e.to_string().contains("invalid host"), "{e}");
        }
        assert!(err("tcp://::1:5555").to_string().contains("brackets"));
    }

    #[test]
    fn rejects_source_address_form() {
        let e = err("tcp://192.168.1.1:5555;10.0.0.1:5556");
        assert!(matches!(e, EndpointError::SourceAddressUnsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("not supported"), "{e}");
    }

    #[test]
    fn rejects_empty_ipc_path() {
        assert!(matches!(err("ipc://"), EndpointError::EmptyPath { .. }));
        assert!(matches!(err("ipc://@"), EndpointError::EmptyPath { .. }));
        assert!(matches!(err("ipc:///tmp/a\0b"), EndpointError::NulInPath { .. }));
    }

    #[test]
    fn rejects_empty_inproc_name() {
        let e = err("inproc://");
        assert_eq!(e, EndpointError::EmptyName { endpoint: "inproc://".into() });
        assert!(e.to_string().contains("empty inproc name"), "{e}");
    }
}
