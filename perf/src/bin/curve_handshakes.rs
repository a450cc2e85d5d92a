//! `curve_handshakes` — CURVE handshakes per second a server completes, and what a HELLO flood does
//! to them (issue 14).
//!
//! ```text
//! curve_handshakes server <bind-endpoint>                  our CURVE ROUTER (the bench's fixed keys)
//! curve_handshakes client <endpoint> <count> [<window>] [--flood <n>]
//! ```
//!
//! The client completes `count` CURVE handshakes against the server at `endpoint` (ours, or a libzmq
//! one such as `tests/peers/curve_server.py`), `window` at a time (default 16), each on a fresh TCP
//! connection closed once the server's READY arrives, and prints
//!
//! ```text
//! RESULT curve_handshakes count=... elapsed_s=... handshakes_per_s=... flood=...
//! ```
//!
//! Its handshakes run on the sans-IO protocol core (`zmtp::proto::Connection`) over plain tokio
//! streams, so the same client measures any server. With `--flood n`, it first opens `n` raw
//! connections that each send a valid greeting and HELLO (the same bytes: replaying a HELLO costs
//! nothing and makes the server do an X25519 and make a key pair) and then stall, and keeps them
//! open while it measures. Keys: `../shared/bench/README.md` (server public `+#Lcz^…`).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zmtp::proto::{Connection, ConnectionConfig, Event, Security};
use zmtp::{CurvePublicKey, CurveSecretKey, Options, Socket, SocketType};

const SERVER_PUBLIC: &str = "+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo";
const SERVER_SECRET: &str = "CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP";
const CLIENT_PUBLIC: &str = "ofpH?!@pbQNQvvj0iGs&X./%u!FXkBB}VV:GTEvS";
const CLIENT_SECRET: &str = ")FimV5Q9q[a+.pe7>!fHPlt[<Bvw{.y?1J@=+2mh";
const USAGE: &str =
    "usage: curve_handshakes server <bind-endpoint> | client <endpoint> <count> [<window>] [--flood <n>]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => fail(1, &format!("runtime: {e}")),
    };
    let code = match args.first().map(String::as_str) {
        Some("server") if args.len() == 2 => runtime.block_on(server(&args[1])),
        Some("client") if args.len() >= 3 => runtime.block_on(client(&args[1..])),
        _ => fail(1, USAGE),
    };
    std::process::exit(code);
}

fn fail(code: i32, message: &str) -> ! {
    eprintln!("curve_handshakes: {message}");
    std::process::exit(code);
}

fn keys() -> (CurvePublicKey, CurveSecretKey, CurvePublicKey, CurveSecretKey) {
    let parse_public = |k| CurvePublicKey::from_z85(k).unwrap_or_else(|e| fail(1, &e.to_string()));
    let parse_secret = |k| CurveSecretKey::from_z85(k).unwrap_or_else(|e| fail(1, &e.to_string()));
    (
        parse_public(SERVER_PUBLIC),
        parse_secret(SERVER_SECRET),
        parse_public(CLIENT_PUBLIC),
        parse_secret(CLIENT_SECRET),
    )
}

async fn server(endpoint: &str) -> i32 {
    let (_, server_secret, _, _) = keys();
    let options = Options { curve_server: true, curve_secret_key: Some(server_secret), ..Options::default() };
    let socket = match Socket::with_options(SocketType::Router, options) {
        Ok(s) => s,
        Err(e) => fail(1, &e.to_string()),
    };
    match socket.bind(endpoint).await {
        Ok(ep) => println!("{ep}"),
        Err(e) => fail(1, &e.to_string()),
    }
    // Serve until killed.
    let _ = tokio::signal::ctrl_c().await;
    0
}

fn client_config() -> ConnectionConfig {
    let (server_public, _, client_public, client_secret) = keys();
    ConnectionConfig::new(SocketType::Dealer).security(Security::CurveClient {
        public: client_public,
        secret: client_secret,
        server: server_public,
    })
}

/// One complete handshake on a fresh connection.
async fn handshake(addr: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let mut conn = Connection::new(client_config(), Instant::now());
    let mut buf = vec![0u8; 4096];
    loop {
        let out = conn.take_transmit();
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::HandshakeComplete(_) => return Ok(()),
                Event::Closed(e) => return Err(e.to_string()),
                _ => {}
            }
        }
        let out = conn.take_transmit();
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
        }
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        conn.handle_input(Instant::now(), &buf[..n]);
    }
}

/// A valid greeting + HELLO, made once.
fn hello() -> Vec<u8> {
    let (server_public, server_secret, _, _) = keys();
    let now = Instant::now();
    let mut client = Connection::new(client_config(), now);
    let mut server = Connection::new(
        ConnectionConfig::new(SocketType::Router)
            .security(Security::CurveServer { public: server_public, secret: server_secret }),
        now,
    );
    client.handle_input(now, &server.take_transmit());
    let _ = client.poll_event();
    client.take_transmit()
}

async fn client(args: &[String]) -> i32 {
    let addr = args[0].trim_start_matches("tcp://").to_owned();
    let count: usize = args[1].parse().unwrap_or_else(|_| fail(1, USAGE));
    let mut window = 16usize;
    let mut flood = 0usize;
    let mut rest = args[2..].iter();
    while let Some(a) = rest.next() {
        if a == "--flood" {
            flood = rest.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| fail(1, USAGE));
        } else {
            window = a.parse().unwrap_or_else(|_| fail(1, USAGE));
        }
    }
    let mut flooders = Vec::with_capacity(flood);
    if flood > 0 {
        let bytes = hello();
        for _ in 0..flood {
            if let Ok(mut s) = TcpStream::connect(&addr).await {
                let _ = s.write_all(&bytes).await;
                flooders.push(s);
            }
        }
        eprintln!("flood: {} raw connections sent a HELLO and stalled", flooders.len());
    }
    let started = Instant::now();
    let mut done = 0usize;
    let mut failed = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    let mut launched = 0usize;
    while done + failed < count {
        while launched < count && tasks.len() < window.max(1) {
            let addr = addr.clone();
            tasks.spawn(async move { tokio::time::timeout(Duration::from_secs(30), handshake(&addr)).await });
            launched += 1;
        }
        match tasks.join_next().await {
            Some(Ok(Ok(Ok(())))) => done += 1,
            Some(Ok(Ok(Err(e)))) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("handshake failed: {e}");
                }
            }
            Some(_) => failed += 1,
            None => break,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "RESULT curve_handshakes count={done} failed={failed} elapsed_s={elapsed:.3} handshakes_per_s={:.0} flood={}",
        done as f64 / elapsed,
        flooders.len()
    );
    drop(flooders);
    i32::from(failed > 0) * 2
}
