//! The `tcp://` transport: listeners with SO_REUSEADDR, TCP_NODELAY on every stream, keepalive options,
//! asynchronous name resolution and per-address connect timeouts.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::TcpStream;

use super::{Stream, TransportOptions};
use crate::runtime::endpoint::Endpoint;

/// The listen backlog, libzmq's default `ZMQ_BACKLOG`.
const BACKLOG: i32 = 100;

/// A bound TCP listener; accepted streams get TCP_NODELAY and the keepalive options it was bound with.
#[derive(Debug)]
pub(crate) struct TcpListener {
    /// The listening socket.
    listener: tokio::net::TcpListener,
    /// The options applied to every accepted stream.
    options: TransportOptions,
}

impl TcpListener {
    /// Binds `host:port` (`port` `None` = ephemeral, as is `Some(0)`) and returns the listener with the
    /// endpoint actually bound (the numeric address and the real port).
    ///
    /// `*` binds 0.0.0.0, or `[::]` dual-stack when `options.ipv6` (falling back to 0.0.0.0 if the
    /// machine cannot create IPv6 sockets, as libzmq does). A host name is resolved and its first
    /// address bound. SO_REUSEADDR is set, as libzmq does, so a port in TIME_WAIT can be reused; a
    /// port another socket listens on is still `AddrInUse`.
    pub(crate) async fn bind(
        host: &str,
        port: Option<u16>,
        options: &TransportOptions,
    ) -> io::Result<(TcpListener, Endpoint)> {
        let port = port.unwrap_or(0);
        let listener = if host == "*" {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
            if options.ipv6 {
                match listen(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), true) {
                    Ok(listener) => listener,
                    Err(e)
                        if matches!(e.kind(), io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied) =>
                    {
                        return Err(e)
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot bind [::], falling back to 0.0.0.0");
                        listen(v4, false)?
                    }
                }
            } else {
                listen(v4, false)?
            }
        } else {
            let addr = resolve(host, port, options.ipv6).await?.into_iter().next().ok_or_else(|| {
                // `resolve` never returns an empty list; this is only for the type.
                io::Error::new(io::ErrorKind::NotFound, format!("no address for host {host:?}"))
            })?;
            listen(addr, false)?
        };
        let local = listener.local_addr()?;
        let bound = Endpoint::Tcp { host: local.ip().to_string(), port: Some(local.port()) };
        Ok((TcpListener { listener, options: options.clone() }, bound))
    }

    /// Accepts the next connection and describes the peer as `ip:port`. Cancel-safe, as
    /// [`tokio::net::TcpListener::accept`] is. Failing to set an option on the new stream is logged,
    /// not returned: the stream is still usable.
    pub(crate) async fn accept(&mut self) -> io::Result<(Stream, String)> {
        let (stream, peer) = self.listener.accept().await?;
        if let Err(e) = configure(&stream, &self.options) {
            tracing::debug!(%peer, error = %e, "cannot set tcp options on an accepted connection");
        }
        Ok((Stream::Tcp(stream), peer.to_string()))
    }
}

/// Creates a non-blocking listening socket on `addr` with SO_REUSEADDR (and IPV6_V6ONLY off when
/// `dual_stack`).
fn listen(addr: SocketAddr, dual_stack: bool) -> io::Result<tokio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if dual_stack {
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// Resolves `host` to socket addresses: an IP literal as is, a name through the asynchronous resolver,
/// keeping IPv4 addresses only unless `ipv6`. Never returns an empty list.
async fn resolve(host: &str, port: u16, ipv6: bool) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {host:?}: {e}")))?
        .filter(|addr| ipv6 || addr.is_ipv4())
        .collect();
    if addrs.is_empty() {
        let which = if ipv6 { "" } else { "IPv4 " };
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("host {host:?} has no {which}address")));
    }
    Ok(addrs)
}

/// Connects to `host:port`: resolves the name, tries each address in turn (each attempt limited by
/// `options.connect_timeout`, `TimedOut` when it expires) and returns the first stream that connects,
/// configured with TCP_NODELAY and the keepalive options, or the last error.
///
/// `*` as host or port, and port 0, are `InvalidInput`: they only make sense for a bind.
pub(crate) async fn connect(host: &str, port: Option<u16>, options: &TransportOptions) -> io::Result<Stream> {
    let port = match port {
        Some(port) if port != 0 && host != "*" => port,
        _ => {
            let port = port.map_or_else(|| "*".to_owned(), |p| p.to_string());
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot connect to tcp://{host}:{port}: a connect needs a concrete host and a non-zero port"),
            ));
        }
    };
    let mut last_error = None;
    for addr in resolve(host, port, options.ipv6).await? {
        let attempt = TcpStream::connect(addr);
        let result = match options.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, attempt).await.unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {addr} timed out after {limit:?}"),
                ))
            }),
            None => attempt.await,
        };
        match result {
            Ok(stream) => {
                configure(&stream, options)?;
                return Ok(Stream::Tcp(stream));
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "tcp connect attempt failed");
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        // `resolve` never returns an empty list; this is only for the type.
        io::Error::new(io::ErrorKind::NotFound, format!("no address for host {host:?}"))
    }))
}

/// Sets TCP_NODELAY and, as libzmq's `tune_tcp_keepalives` does, the keepalive options: nothing when
/// `tcp_keepalive` is `None`, SO_KEEPALIVE off for `Some(false)`, and SO_KEEPALIVE on plus whichever
/// of idle, interval and count are set for `Some(true)`.
fn configure(stream: &TcpStream, options: &TransportOptions) -> io::Result<()> {
    stream.set_nodelay(true)?;
    match options.tcp_keepalive {
        None => {}
        Some(false) => SockRef::from(stream).set_keepalive(false)?,
        Some(true) => {
            let mut keepalive = TcpKeepalive::new();
            if let Some(idle) = options.tcp_keepalive_idle {
                keepalive = keepalive.with_time(idle);
            }
            #[cfg(any(
                target_os = "android",
                target_os = "dragonfly",
                target_os = "freebsd",
                target_os = "fuchsia",
                target_os = "illumos",
                target_os = "ios",
                target_os = "linux",
                target_os = "macos",
                target_os = "netbsd",
            ))]
            {
                if let Some(interval) = options.tcp_keepalive_interval {
                    keepalive = keepalive.with_interval(interval);
                }
                if let Some(count) = options.tcp_keepalive_count {
                    keepalive = keepalive.with_retries(count);
                }
            }
            SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::tests::exchange;
    use super::super::{connect, Listener};
    use super::*;

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    fn port_of(endpoint: &Endpoint) -> u16 {
        match endpoint {
            Endpoint::Tcp { port: Some(port), .. } => *port,
            other => panic!("not a bound tcp endpoint: {other}"),
        }
    }

    async fn bind(s: &str, options: &TransportOptions) -> io::Result<(Listener, Endpoint)> {
        Listener::bind(&ep(s), options).await
    }

    #[tokio::test]
    async fn binds_ephemeral_port_and_exchanges_bytes() {
        let options = TransportOptions::default();
        let (mut listener, bound) = bind("tcp://127.0.0.1:*", &options).await.unwrap();
        let port = port_of(&bound);
        assert_ne!(port, 0);
        assert_eq!(bound.to_string(), format!("tcp://127.0.0.1:{port}"));

        let mut client = connect(&bound, &options).await.unwrap();
        let (mut server, peer) = listener.accept().await.unwrap();
        assert!(peer.starts_with("127.0.0.1:"), "{peer}");
        for stream in [&client, &server] {
            let Stream::Tcp(tcp) = stream else { panic!("not tcp") };
            assert!(tcp.nodelay().unwrap(), "TCP_NODELAY not set");
        }
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn binds_port_zero_as_ephemeral() {
        let (_listener, bound) = bind("tcp://127.0.0.1:0", &TransportOptions::default()).await.unwrap();
        assert_ne!(port_of(&bound), 0);
    }

    #[tokio::test]
    async fn binds_star_as_all_ipv4_interfaces() {
        let options = TransportOptions::default();
        let (mut listener, bound) = bind("tcp://*:*", &options).await.unwrap();
        let port = port_of(&bound);
        assert_eq!(bound.to_string(), format!("tcp://0.0.0.0:{port}"));
        let mut client = connect(&ep(&format!("tcp://127.0.0.1:{port}")), &options).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        exchange(&mut client, &mut server).await;

        // A fixed port reads back as libzmq's LAST_ENDPOINT does.
        drop(listener);
        let (_listener, bound) = bind(&format!("tcp://*:{port}"), &options).await.unwrap();
        assert_eq!(bound.to_string(), format!("tcp://0.0.0.0:{port}"));
    }

    #[tokio::test]
    async fn binds_star_dual_stack_with_ipv6() {
        let options = TransportOptions { ipv6: true, ..Default::default() };
        let (mut listener, bound) = bind("tcp://*:*", &options).await.unwrap();
        let port = port_of(&bound);
        let Endpoint::Tcp { host, .. } = &bound else { unreachable!() };
        // "::" on machines with IPv6, "0.0.0.0" after the fallback on those without.
        assert!(host == "::" || host == "0.0.0.0", "{bound}");
        // IPv4 clients reach a dual-stack listener.
        let mut client = connect(&ep(&format!("tcp://127.0.0.1:{port}")), &options).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn refuses_second_bind_on_same_port() {
        let options = TransportOptions::default();
        let (_listener, bound) = bind("tcp://127.0.0.1:*", &options).await.unwrap();
        let err = Listener::bind(&bound, &options).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    }

    #[tokio::test]
    async fn connect_to_closed_port_is_refused() {
        let options = TransportOptions::default();
        let (listener, bound) = bind("tcp://127.0.0.1:*", &options).await.unwrap();
        drop(listener);
        let err = connect(&bound, &options).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }

    #[tokio::test]
    async fn connect_resolves_localhost() {
        let options = TransportOptions::default();
        let (mut listener, bound) = bind("tcp://127.0.0.1:*", &options).await.unwrap();
        let port = port_of(&bound);
        let mut client = connect(&ep(&format!("tcp://localhost:{port}")), &options).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn bind_resolves_host_name_to_its_first_address() {
        let (_listener, bound) = bind("tcp://localhost:*", &TransportOptions::default()).await.unwrap();
        let Endpoint::Tcp { host, .. } = &bound else { unreachable!() };
        // Without ipv6, names resolve to IPv4 only.
        assert!(host.parse::<Ipv4Addr>().unwrap().is_loopback(), "{bound}");
    }

    #[tokio::test]
    async fn connect_reports_unresolvable_names() {
        let err =
            connect(&ep("tcp://no-such-host.invalid:5555"), &TransportOptions::default()).await.unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    }

    #[tokio::test]
    async fn works_over_ipv6_loopback_when_available() {
        let options = TransportOptions::default();
        let (mut listener, bound) = match bind("tcp://[::1]:*", &options).await {
            Ok(bound) => bound,
            Err(e) => {
                eprintln!("skipping: no IPv6 loopback ({e})");
                return;
            }
        };
        let port = port_of(&bound);
        assert_eq!(bound.to_string(), format!("tcp://[::1]:{port}"));
        let mut client = connect(&bound, &options).await.unwrap();
        let (mut server, peer) = listener.accept().await.unwrap();
        assert!(peer.starts_with("[::1]:"), "{peer}");
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn connect_rejects_wildcards_and_port_zero() {
        let options = TransportOptions::default();
        for s in ["tcp://*:5555", "tcp://127.0.0.1:*", "tcp://127.0.0.1:0", "tcp://*:*"] {
            let err = connect(&ep(s), &options).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{s}: {err}");
        }
    }

    #[tokio::test]
    async fn applies_keepalive_options_to_both_ends() {
        let options = TransportOptions {
            tcp_keepalive: Some(true),
            tcp_keepalive_idle: Some(Duration::from_secs(30)),
            tcp_keepalive_interval: Some(Duration::from_secs(5)),
            tcp_keepalive_count: Some(3),
            ..Default::default()
        };
        let (mut listener, bound) = bind("tcp://127.0.0.1:*", &options).await.unwrap();
        let client = connect(&bound, &options).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        for stream in [&client, &server] {
            let Stream::Tcp(tcp) = stream else { panic!("not tcp") };
            let sock = SockRef::from(tcp);
            assert!(sock.keepalive().unwrap());
            #[cfg(target_os = "linux")]
            {
                assert_eq!(sock.keepalive_time().unwrap(), Duration::from_secs(30));
                assert_eq!(sock.keepalive_interval().unwrap(), Duration::from_secs(5));
                assert_eq!(sock.keepalive_retries().unwrap(), 3);
            }
        }

        let off = TransportOptions { tcp_keepalive: Some(false), ..Default::default() };
        let client = connect(&bound, &off).await.unwrap();
        let Stream::Tcp(tcp) = &client else { panic!("not tcp") };
        assert!(!SockRef::from(tcp).keepalive().unwrap());
    }

    #[tokio::test]
    async fn connect_timeout_bounds_the_attempt() {
        // A listener that never accepts, with the smallest backlog: once its queue is full, the kernel
        // drops further SYNs and a connect hangs until our timeout.
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into()).unwrap();
        socket.listen(0).unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        let endpoint = ep(&format!("tcp://127.0.0.1:{port}"));
        let options =
            TransportOptions { connect_timeout: Some(Duration::from_millis(200)), ..Default::default() };

        let mut held = Vec::new();
        for _ in 0..16 {
            let started = Instant::now();
            match connect(&endpoint, &options).await {
                Ok(stream) => held.push(stream),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
                    assert!(e.to_string().contains("timed out"), "{e}");
                    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
                    return;
                }
            }
        }
        eprintln!("skipping: this system completes connects beyond the listen backlog");
    }
}
