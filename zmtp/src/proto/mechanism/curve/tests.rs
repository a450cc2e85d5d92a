//! CURVE handshake and MESSAGE tests over the in-memory loopback, including the hostile cases of
//! issue 14 (reliability.md A-V1..A-V11).

use std::time::Instant;

use bytes::Bytes;

use crate::message::Msg;
use crate::proto::config::ConnectionConfig;
use crate::proto::connection::{Connection, Event};
use crate::proto::error::{ConnectionError, ProtocolError};
use crate::proto::keys::{CurvePublicKey, CurveSecretKey};
use crate::proto::loopback::exchange;
use crate::proto::mechanism::{AuthReply, Credentials, Security};
use crate::proto::socket_type::SocketType;

const GREETING: usize = 64;

fn server_secret() -> CurveSecretKey {
    CurveSecretKey::from_bytes([0x11; 32])
}
fn client_secret() -> CurveSecretKey {
    CurveSecretKey::from_bytes([0x22; 32])
}

fn server_config(authenticate: bool) -> ConnectionConfig {
    let secret = server_secret();
    ConnectionConfig::new(SocketType::Rep)
        .security(Security::CurveServer { public: secret.public_key(), secret })
        .authenticate(authenticate)
}

fn client_config_for(server: CurvePublicKey) -> ConnectionConfig {
    let secret = client_secret();
    ConnectionConfig::new(SocketType::Req).security(Security::CurveClient {
        public: secret.public_key(),
        secret,
        server,
    })
}

fn client_config() -> ConnectionConfig {
    client_config_for(server_secret().public_key())
}

fn pair(now: Instant) -> (Connection, Connection) {
    let mut c = Connection::new(client_config(), now);
    let mut s = Connection::new(server_config(false), now);
    let (ce, se) = exchange(&mut c, &mut s, now);
    assert!(matches!(ce[..], [Event::HandshakeComplete(_)]), "client: {ce:?}");
    assert!(matches!(se[..], [Event::HandshakeComplete(_)]), "server: {se:?}");
    (c, s)
}

fn closed(events: &[Event]) -> Option<&ConnectionError> {
    events.iter().find_map(|e| if let Event::Closed(e) = e { Some(e) } else { None })
}

/// Splits one side's handshake output into commands: greeting, then each command frame's bytes.
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![bytes[..GREETING].to_vec()];
    let mut rest = &bytes[GREETING..];
    while !rest.is_empty() {
        let (hl, len) = if rest[0] & 0x02 != 0 {
            (9, u64::from_be_bytes(rest[1..9].try_into().unwrap()) as usize)
        } else {
            (2, usize::from(rest[1]))
        };
        out.push(rest[..hl + len].to_vec());
        rest = &rest[hl + len..];
    }
    out
}

#[test]
fn handshake_sizes_match_rfc_26() {
    let now = Instant::now();
    let mut s = Connection::new(server_config(false), now);
    let (hello, initiate) = client_handshake(now, &mut s);
    assert_eq!(hello.len(), 2 + 200, "HELLO");
    assert_eq!(&hello[2..8], b"\x05HELLO");
    assert_eq!(&hello[10..82], &[0u8; 72][..], "72 octets of zero padding");
    assert!(initiate.len() >= 3 + 257, "INITIATE");
    s.handle_input(now, &initiate);
    assert!(matches!(s.poll_event(), Some(Event::HandshakeComplete(_))));
    let ready = s.take_transmit();
    assert!(ready.len() >= 2 + 30, "READY");
}

#[test]
fn welcome_is_168_octets() {
    let now = Instant::now();
    let mut c = Connection::new(client_config(), now);
    let mut s = Connection::new(server_config(false), now);
    c.handle_input(now, &s.take_transmit());
    let _ = c.poll_event();
    s.handle_input(now, &c.take_transmit());
    let _ = s.poll_event();
    let out = s.take_transmit();
    assert_eq!(out.len(), 2 + 168);
    assert_eq!(&out[2..10], b"\x07WELCOME");
}

#[test]
fn messages_round_trip_both_ways_including_multipart_and_large() {
    let now = Instant::now();
    let (mut c, mut s) = pair(now);
    let big = Bytes::from(vec![0xabu8; 100_000]);
    c.send_message(Msg::from(vec![Bytes::from_static(b"hello"), Bytes::new(), big.clone()])).unwrap();
    let wire = c.take_transmit();
    assert!(!wire.windows(5).any(|w| w == b"hello"), "plain text on the wire");
    s.handle_input(now, &wire);
    match s.poll_event() {
        Some(Event::Message(m)) => {
            assert_eq!(m.frames().len(), 3);
            assert_eq!(m.frames()[0], "hello");
            assert!(m.frames()[1].is_empty());
            assert_eq!(m.frames()[2], big);
        }
        other => panic!("{other:?}"),
    }
    for i in 0..100u32 {
        s.send_message(Msg::from(Bytes::from(i.to_be_bytes().to_vec()))).unwrap();
    }
    c.handle_input(now, &s.take_transmit());
    for i in 0..100u32 {
        assert_eq!(c.poll_event(), Some(Event::Message(Msg::from(Bytes::from(i.to_be_bytes().to_vec())))));
    }
}

#[test]
fn a_wrong_server_key_fails_at_welcome() {
    let now = Instant::now();
    let wrong = CurveSecretKey::from_bytes([0x33; 32]).public_key();
    let mut c = Connection::new(client_config_for(wrong), now);
    let mut s = Connection::new(server_config(false), now);
    let (ce, se) = exchange(&mut c, &mut s, now);
    // The server cannot open the HELLO signature box: it closes without WELCOME.
    assert!(
        matches!(closed(&se), Some(ConnectionError::Protocol(ProtocolError::Cryptographic { .. }))),
        "{se:?}"
    );
    assert!(!ce.iter().any(|e| matches!(e, Event::HandshakeComplete(_))));
}

fn hello_of(now: Instant) -> Vec<u8> {
    let mut c = Connection::new(client_config(), now);
    let mut s = Connection::new(server_config(false), now);
    c.handle_input(now, &s.take_transmit()[..GREETING]);
    let _ = c.poll_event();
    let out = c.take_transmit();
    frames(&out)[1].clone()
}

fn server_after(now: Instant, frames_in: &[&[u8]]) -> (Connection, Vec<Event>, Vec<u8>) {
    let mut s = Connection::new(server_config(false), now);
    let c = Connection::new(client_config(), now);
    let greeting = c.transmit().chunks().next().unwrap()[..GREETING].to_vec();
    s.handle_input(now, &greeting);
    for f in frames_in {
        s.handle_input(now, f);
    }
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    let out = s.take_transmit();
    (s, events, out)
}

#[test]
fn hello_of_wrong_size_version_or_padding_is_refused_without_welcome() {
    let now = Instant::now();
    let hello = hello_of(now);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("6 octets", b"\x04\x06\x05HELLO".to_vec()));
    let mut short = hello.clone();
    short.pop();
    short[1] -= 1;
    cases.push(("199 octets", short));
    let mut long = hello.clone();
    long.push(0);
    long[1] += 1;
    cases.push(("201 octets", long));
    let mut version = hello.clone();
    version[8] = 2;
    cases.push(("version 2.0", version));
    let mut padding = hello.clone();
    padding[40] = 1;
    cases.push(("padding not zero", padding));
    let mut signature = hello.clone();
    signature[150] ^= 1;
    cases.push(("signature box altered", signature));
    let mut name = hello.clone();
    name[5] = b'X';
    cases.push(("misspelled name", name));
    // The frame's 2-octet header, then the body: name 6, version 2, padding 72, key 32.
    let mut zero_key = hello.clone();
    zero_key[82..114].fill(0);
    cases.push(("all-zero transient key", zero_key));
    // Bit 255 set: X25519 reads the same point, so the signature box still opens (found by the
    // curve_server fuzzer); refused as a non-canonical alias.
    let mut alias = hello.clone();
    alias[113] |= 0x80;
    cases.push(("transient key with bit 255 set", alias));
    for (what, frame) in cases {
        let (s, events, out) = server_after(now, &[&frame]);
        assert!(s.is_closed(), "{what}: {events:?}");
        assert!(
            out.len() <= GREETING || !out[GREETING..].windows(7).any(|w| w == b"WELCOME"),
            "{what}: WELCOME sent"
        );
    }
}

/// A complete client handshake's commands (HELLO, INITIATE) against a given server.
fn client_handshake(now: Instant, s: &mut Connection) -> (Vec<u8>, Vec<u8>) {
    let mut c = Connection::new(client_config(), now);
    let s_out = s.take_transmit();
    c.handle_input(now, &s_out);
    let _ = c.poll_event();
    let out = c.take_transmit();
    let f = frames(&out);
    let hello = f[1].clone();
    s.handle_input(now, &out);
    let _ = s.poll_event();
    let welcome = s.take_transmit();
    c.handle_input(now, &welcome);
    let _ = c.poll_event();
    let initiate = c.take_transmit();
    (hello, initiate)
}

#[test]
fn a_hello_and_initiate_replayed_on_another_connection_fail() {
    let now = Instant::now();
    let mut s1 = Connection::new(server_config(false), now);
    let (hello, initiate) = client_handshake(now, &mut s1);
    // The same HELLO + INITIATE to a fresh server: it answers HELLO with its own cookie key, so the
    // captured INITIATE's cookie does not open.
    let (s2, events, _) = server_after(now, &[&hello, &initiate]);
    assert!(s2.is_closed());
    assert!(
        matches!(closed(&events), Some(ConnectionError::Protocol(ProtocolError::Cryptographic { .. }))),
        "{events:?}"
    );
    // And the original server completes with it.
    s1.handle_input(now, &initiate);
    assert!(matches!(s1.poll_event(), Some(Event::HandshakeComplete(_))));
}

#[test]
fn initiate_truncated_or_altered_is_refused() {
    let now = Instant::now();
    for (what, edit) in [
        (
            "truncated",
            Box::new(|f: &mut Vec<u8>| *f = b"\x04\x09\x08INITIATE".to_vec()) as Box<dyn Fn(&mut Vec<u8>)>,
        ),
        ("cookie flipped", Box::new(|f: &mut Vec<u8>| f[30] ^= 1)),
        ("box flipped", Box::new(|f: &mut Vec<u8>| f[150] ^= 1)),
        (
            "nonce = HELLO's",
            Box::new(|f: &mut Vec<u8>| f[2 + 9 + 96..2 + 9 + 96 + 8].copy_from_slice(&1u64.to_be_bytes())),
        ),
    ] {
        let mut s = Connection::new(server_config(false), now);
        let (_hello, mut initiate) = client_handshake(now, &mut s);
        edit(&mut initiate);
        s.handle_input(now, &initiate);
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(s.is_closed(), "{what}: {events:?}");
    }
}

#[test]
fn welcome_from_a_server_with_another_key_is_refused() {
    let now = Instant::now();
    // A WELCOME whose box does not open with the key we hold for the server (one octet altered
    // stands for a server that holds another secret: the box is authenticated either way).
    let mut c = Connection::new(client_config(), now);
    let mut s = Connection::new(server_config(false), now);
    c.handle_input(now, &s.take_transmit());
    let _ = c.poll_event();
    let out = c.take_transmit();
    s.handle_input(now, &out);
    let _ = s.poll_event();
    let mut welcome = s.take_transmit();
    let at = welcome.len() - 50;
    welcome[at] ^= 1;
    c.handle_input(now, &welcome);
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        matches!(closed(&events), Some(ConnectionError::Protocol(ProtocolError::Cryptographic { .. }))),
        "{events:?}"
    );
    // A client never sends ERROR.
    assert!(!c.take_transmit().windows(5).any(|w| w == b"ERROR"));
}

/// One sealed data frame from `from` (its bytes on the wire).
fn sealed(from: &mut Connection, body: &'static [u8]) -> Vec<u8> {
    from.send_message(Msg::from(Bytes::from_static(body))).unwrap();
    from.take_transmit()
}

#[test]
fn replayed_reordered_truncated_or_forged_messages_close_the_connection() {
    let now = Instant::now();
    type Edit = fn(&mut Vec<u8>, &[u8]);
    let cases: [(&str, Edit); 6] = [
        ("replayed", |wire, first| *wire = [first, first].concat()),
        ("reordered", |wire, first| *wire = [wire.as_slice(), first].concat()),
        ("truncated under 33", |wire, _| {
            *wire = b"\x00\x10\x07MESSAGE\x00\x00\x00\x00\x00\x00\x00\x09".to_vec()
        }),
        ("MAC flipped", |wire, _| wire[20] ^= 1),
        ("plain data frame", |wire, _| *wire = b"\x00\x05hello".to_vec()),
        ("outer MORE does not join messages", |wire, first| {
            // Two one-frame messages, the first's outer flags set to MORE: still two messages.
            let mut a = first.to_vec();
            a[0] |= 0x01;
            *wire = [a.as_slice(), wire.as_slice()].concat();
        }),
    ];
    for (what, edit) in cases {
        let (mut c, mut s) = pair(now);
        let first = sealed(&mut c, b"one");
        let mut wire = sealed(&mut c, b"two");
        if what.starts_with("outer") {
            edit(&mut wire, &first);
            s.handle_input(now, &wire);
            let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
            assert_eq!(events.len(), 2, "{what}: {events:?}");
            continue;
        }
        if what == "replayed" {
            edit(&mut wire, &first);
        } else if what == "reordered" {
            // "two" arrives, then "one" (lower nonce).
            edit(&mut wire, &first);
        } else {
            edit(&mut wire, &first);
        }
        s.handle_input(now, &wire);
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(s.is_closed(), "{what}: {events:?}");
        // RFC 26: no ERROR for a bad MESSAGE; nothing in clear after the handshake.
        assert!(s.take_transmit().is_empty(), "{what}: sent something");
    }
}

#[test]
fn heartbeats_and_subscriptions_travel_boxed() {
    let now = Instant::now();
    let secret = server_secret();
    let mut p = Connection::new(
        ConnectionConfig::new(SocketType::Pub)
            .security(Security::CurveServer { public: secret.public_key(), secret }),
        now,
    );
    let client = client_secret();
    let mut sub = Connection::new(
        ConnectionConfig::new(SocketType::Sub).security(Security::CurveClient {
            public: client.public_key(),
            secret: client,
            server: server_secret().public_key(),
        }),
        now,
    );
    exchange(&mut sub, &mut p, now);
    assert!(sub.is_ready() && p.is_ready());
    sub.send_subscribe(Bytes::from_static(b"topic")).unwrap();
    let wire = sub.take_transmit();
    assert!(!wire.windows(9).any(|w| w == b"SUBSCRIBE"));
    p.handle_input(now, &wire);
    assert_eq!(p.poll_event(), Some(Event::Subscribe(Bytes::from_static(b"topic"))));
    // A PING (boxed command) is answered with a boxed PONG.
    let ping =
        crate::proto::command::Command::Ping { ttl_deciseconds: 0, context: Bytes::from_static(b"ctx") };
    sub.queue_command(&ping);
    p.handle_input(now, &sub.take_transmit());
    assert_eq!(p.poll_event(), None);
    assert!(!p.is_closed());
    let pong = p.take_transmit();
    assert!(!pong.windows(4).any(|w| w == b"PONG"));
    sub.handle_input(now, &pong);
    assert_eq!(sub.poll_event(), None);
    assert!(sub.is_ready());
}

#[test]
fn the_server_asks_for_a_decision_on_the_client_key() {
    let now = Instant::now();
    for allow in [true, false] {
        let mut c = Connection::new(client_config(), now);
        let mut s = Connection::new(server_config(true), now);
        let (_ce, se) = exchange(&mut c, &mut s, now);
        match &se[..] {
            [Event::Authenticate(Credentials::Curve { public_key })] => {
                assert_eq!(*public_key, client_secret().public_key());
            }
            other => panic!("{other:?}"),
        }
        let reply = if allow { AuthReply::allow("alice") } else { AuthReply::deny(400, "no") };
        s.handle_auth_reply(reply);
        let (ce, se) = exchange(&mut c, &mut s, now);
        if allow {
            match (&ce[..], &se[..]) {
                ([Event::HandshakeComplete(_)], [Event::HandshakeComplete(info)]) => {
                    assert_eq!(info.user_id().map(|b| &b[..]), Some(&b"alice"[..]));
                }
                other => panic!("{other:?}"),
            }
        } else {
            assert!(
                matches!(closed(&se), Some(ConnectionError::AuthenticationFailed { status: 400, .. })),
                "{se:?}"
            );
            assert!(
                matches!(closed(&ce), Some(ConnectionError::PeerError { reason }) if &reason[..] == b"400"),
                "{ce:?}"
            );
        }
    }
}

#[test]
fn plain_handshake_with_and_without_a_decision() {
    let now = Instant::now();
    let client = || {
        Connection::new(
            ConnectionConfig::new(SocketType::Dealer).security(Security::PlainClient {
                username: Bytes::from_static(b"admin"),
                password: crate::proto::Password::new(Bytes::from_static(b"secret")),
            }),
            now,
        )
    };
    let server = |auth| {
        Connection::new(
            ConnectionConfig::new(SocketType::Router).security(Security::PlainServer).authenticate(auth),
            now,
        )
    };
    let (mut c, mut s) = (client(), server(false));
    let (ce, se) = exchange(&mut c, &mut s, now);
    assert!(
        matches!(ce[..], [Event::HandshakeComplete(_)]) && matches!(se[..], [Event::HandshakeComplete(_)])
    );
    let (mut c, mut s) = (client(), server(true));
    let (_, se) = exchange(&mut c, &mut s, now);
    match &se[..] {
        [Event::Authenticate(Credentials::Plain { username, password })] => {
            assert_eq!(&username[..], b"admin");
            assert_eq!(&password.expose()[..], b"secret");
            assert!(!format!("{:?}", se[0]).contains("secret"), "password in Debug");
        }
        other => panic!("{other:?}"),
    }
    s.handle_auth_reply(AuthReply::deny(400, "bad"));
    let (ce, se) = exchange(&mut c, &mut s, now);
    assert!(matches!(closed(&se), Some(ConnectionError::AuthenticationFailed { status: 400, .. })));
    assert!(matches!(closed(&ce), Some(ConnectionError::PeerError { .. })));
}

#[test]
fn both_as_server_is_refused_and_a_libzmq_style_zero_is_accepted() {
    let now = Instant::now();
    let secret = server_secret();
    let mut a = Connection::new(server_config(false), now);
    let mut b = Connection::new(
        ConnectionConfig::new(SocketType::Req)
            .security(Security::CurveServer { public: secret.public_key(), secret }),
        now,
    );
    let (ae, be) = exchange(&mut a, &mut b, now);
    assert!(matches!(closed(&ae), Some(ConnectionError::Protocol(ProtocolError::AsServerConflict(true)))));
    assert!(closed(&be).is_some());
    // libzmq 4.3's greeting always says as-server = 0, servers' included: our client accepts it.
    let (mut c, mut s) = (Connection::new(client_config(), now), Connection::new(server_config(false), now));
    let mut greeting = s.take_transmit();
    assert_eq!(greeting[32], 1, "we say as-server = 1");
    greeting[32] = 0;
    c.handle_input(now, &greeting);
    assert_eq!(c.poll_event(), None);
    assert!(!c.is_closed());
    s.handle_input(now, &c.take_transmit());
    let (ce, se) = exchange(&mut c, &mut s, now);
    assert!(
        matches!(ce[..], [Event::HandshakeComplete(_)]) && matches!(se[..], [Event::HandshakeComplete(_)])
    );
}

#[test]
fn a_null_greeting_to_a_curve_server_is_refused() {
    let now = Instant::now();
    let mut s = Connection::new(server_config(false), now);
    s.handle_input(
        now,
        &crate::proto::loopback::null_peer_opening(SocketType::Req, crate::proto::Version::V3_1),
    );
    assert!(matches!(
        s.poll_event(),
        Some(Event::Closed(ConnectionError::Protocol(ProtocolError::MechanismMismatch { .. })))
    ));
}

#[test]
fn a_plain_client_reads_libzmqs_misspelled_error() {
    // libzmq 4.3.5's PLAIN server refusing a password, captured: `04 09 5e 52 52 4f 52 03 "400"`.
    let now = Instant::now();
    let mut c = Connection::new(
        ConnectionConfig::new(SocketType::Req).security(Security::PlainClient {
            username: Bytes::from_static(b"admin"),
            password: crate::proto::Password::new(Bytes::from_static(b"wrong")),
        }),
        now,
    );
    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1];
    greeting.extend(b"PLAIN");
    greeting.resize(64, 0);
    c.handle_input(now, &greeting);
    c.handle_input(now, b"\x04\x09\x5eRROR\x03400");
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        matches!(closed(&events), Some(ConnectionError::PeerError { reason }) if &reason[..] == b"400"),
        "{events:?}"
    );
}

#[test]
fn box_keys_match_crypto_box() {
    use crypto_box::aead::AeadInPlace;
    // Our composition (X25519, HSalsa20, secretbox) against RustCrypto's crypto_box, same inputs.
    for seed in 1u8..=8 {
        let ours_secret = zeroize::Zeroizing::new([seed; 32]);
        let peer_public = CurveSecretKey::from_bytes([seed.wrapping_mul(7).wrapping_add(3); 32]).public_key();
        let ours = super::box_key(peer_public.as_bytes(), &ours_secret).unwrap();
        let theirs = crypto_box::SalsaBox::new(
            &crypto_box::PublicKey::from(*peer_public.as_bytes()),
            &crypto_box::SecretKey::from(*ours_secret),
        );
        let nonce = super::nonce(super::MESSAGE_C_PREFIX, &u64::from(seed).to_be_bytes());
        for len in [0usize, 1, 17, 64, 1000] {
            let mut a = vec![seed; len];
            let mut b = a.clone();
            let ta = ours.encrypt_in_place_detached(&nonce, b"", &mut a).unwrap();
            let tb = theirs.encrypt_in_place_detached(&nonce, b"", &mut b).unwrap();
            assert_eq!((a, ta), (b, tb), "seed {seed} len {len}");
        }
    }
}

#[test]
fn debug_shows_no_key_material() {
    let now = Instant::now();
    let (c, s) = pair(now);
    for shown in [format!("{c:?}"), format!("{s:?}"), format!("{:?}", server_config(true))] {
        for secret in [server_secret(), client_secret()] {
            assert!(!shown.contains(&secret.to_z85()), "{shown}");
            assert!(!shown.contains(&format!("{:?}", secret.as_bytes())), "{shown}");
        }
    }
}

#[test]
fn a_second_hello_or_a_replayed_initiate_after_the_handshake_closes() {
    let now = Instant::now();
    let mut s = Connection::new(server_config(false), now);
    let (hello, initiate) = client_handshake(now, &mut s);
    // A second HELLO where INITIATE is expected.
    let mut s2 = Connection::new(server_config(false), now);
    let (_, events, _) = {
        let mut fresh = Connection::new(client_config(), now);
        let g = fresh.take_transmit();
        s2.handle_input(now, &g[..GREETING]);
        s2.handle_input(now, &hello);
        let _ = s2.poll_event();
        s2.handle_input(now, &hello);
        let ev: Vec<_> = std::iter::from_fn(|| s2.poll_event()).collect();
        ((), ev, ())
    };
    assert!(s2.is_closed(), "{events:?}");
    // The INITIATE again after the handshake: plain text where only MESSAGEs may come.
    s.handle_input(now, &initiate);
    assert!(matches!(s.poll_event(), Some(Event::HandshakeComplete(_))));
    s.handle_input(now, &initiate);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(s.is_closed(), "{events:?}");
}

#[test]
fn a_server_that_never_answers_hello_times_the_client_out() {
    let now = Instant::now();
    let t = std::time::Duration::from_secs(2);
    let mut c = Connection::new(client_config().handshake_timeout(Some(t)), now);
    let s = Connection::new(server_config(false), now);
    // The server's greeting arrives; its WELCOME never does.
    let greeting = s.transmit().chunks().next().unwrap()[..GREETING].to_vec();
    c.handle_input(now, &greeting);
    assert_eq!(c.poll_event(), None);
    c.handle_timeout(now + t);
    assert_eq!(c.poll_event(), Some(Event::Closed(ConnectionError::HandshakeTimeout(t))));
}

#[test]
fn an_incompatible_socket_type_is_refused_before_ready() {
    let now = Instant::now();
    let secret = server_secret();
    let mut s = Connection::new(
        ConnectionConfig::new(SocketType::Pub)
            .security(Security::CurveServer { public: secret.public_key(), secret }),
        now,
    );
    let (_hello, initiate) = client_handshake(now, &mut s);
    s.handle_input(now, &initiate);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        matches!(
            closed(&events),
            Some(ConnectionError::Protocol(ProtocolError::IncompatibleSocketType { .. }))
        ),
        "{events:?}"
    );
    let out = s.take_transmit();
    assert!(!out.windows(6).any(|w| w == b"\x05READY"), "READY sent to a refused peer");
    assert!(out.windows(6).any(|w| w == b"\x05ERROR"), "no ERROR: {out:?}");
}

#[test]
fn sealed_frames_match_crypto_secretbox() {
    use crypto_secretbox::aead::AeadInPlace;
    use crypto_secretbox::KeyInit;
    // The session cipher (one HSalsa20 per direction) against RustCrypto's crypto_secretbox (one per
    // frame), same key, nonces and bodies: identical ciphertext and tag; and it opens its own frames.
    let key = zeroize::Zeroizing::new([0x42u8; 32]);
    let reference = crypto_secretbox::XSalsa20Poly1305::new(
        crypto_secretbox::aead::generic_array::GenericArray::from_slice(&key[..]),
    );
    let mut client = super::CurveCipher::new(&key, false, 3, 1);
    let mut server = super::CurveCipher::new(&key, true, 2, 2);
    for (i, len) in
        [0usize, 1, 15, 16, 31, 32, 33, 63, 64, 65, 200, 1000, 4096, 70_000].into_iter().enumerate()
    {
        let body: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
        let n = client.next_nonce().unwrap();
        let mut frame = bytes::BytesMut::new();
        client.seal(n, i % 2 == 0, i % 3 == 0, &[&body], &mut frame);
        let header = frame.len() - (super::MESSAGE_OVERHEAD + len);
        let outer = &frame[header..];
        let mut expected = vec![u8::from(i % 2 == 0) | (u8::from(i % 3 == 0) << 1)];
        expected.extend(&body);
        let tag = reference
            .encrypt_in_place_detached(
                &super::nonce(super::MESSAGE_C_PREFIX, &n.to_be_bytes()),
                b"",
                &mut expected,
            )
            .unwrap();
        assert_eq!(&outer[16..32], &tag[..], "tag, len {len}");
        assert_eq!(&outer[32..], &expected[..], "ciphertext, len {len}");
        let mut received = outer.to_vec();
        let (more, command) = server.open(&mut received).unwrap();
        assert_eq!((more, command), (i % 2 == 0, i % 3 == 0));
        assert_eq!(&received[super::MESSAGE_OVERHEAD..], &body[..]);
    }
}
