//! The CURVE server: HELLO proves the client knows our key; WELCOME hands it our transient key and a
//! cookie only we can open; INITIATE proves the client's long-term key (the vouch) and carries its
//! metadata; READY completes, after the authenticator allows the client's key.

use bytes::{BufMut, Bytes};
use crypto_secretbox::{KeyInit, XSalsa20Poly1305};
use zeroize::Zeroizing;

use super::{
    as_box, box_key, box_key_bytes, ct_eq, nonce, open, peer_key, seal, short_nonce, transient_keypair,
    CurveCipher, Nonce, Secret, COOKIE_LEN, COOKIE_PREFIX, HELLO_LEN, HELLO_PREFIX, INITIATE_MIN_LEN,
    INITIATE_PREFIX, READY_PREFIX, TAG_LEN, VOUCH_LEN, VOUCH_PREFIX, WELCOME_PREFIX,
};
use crate::proto::command::Command;
use crate::proto::connection::check_peer_metadata;
use crate::proto::error::{ConnectionError, ProtocolError};
use crate::proto::keys::{CurvePublicKey, CurveSecretKey};
use crate::proto::mechanism::{
    malformed, random, unasked, unexpected, AuthReply, Completion, Credentials, HandshakeStatus,
};
use crate::proto::metadata::Metadata;
use crate::proto::socket_type::SocketType;

/// Waiting for HELLO.
pub(crate) struct ExpectHello {
    public: CurvePublicKey,
    secret: CurveSecretKey,
    authenticate: bool,
    socket_type: SocketType,
}

/// WELCOME sent: holds the cookie key, which exists only until INITIATE is checked.
pub(crate) struct ExpectInitiate {
    public: CurvePublicKey,
    authenticate: bool,
    socket_type: SocketType,
    cookie_key: Zeroizing<[u8; 32]>,
    client_transient: [u8; 32],
    transient_secret: Secret,
    hello_nonce: u64,
}

/// INITIATE checked; the authenticator decides on the client's key.
pub(crate) struct Authenticating {
    /// The session key (READY's box and the MESSAGE cipher).
    session_key: Secret,
    metadata: Metadata,
    initiate_nonce: u64,
}

/// The CURVE server's states.
pub(crate) enum Server {
    ExpectHello(ExpectHello),
    ExpectInitiate(Box<ExpectInitiate>),
    Authenticating(Box<Authenticating>),
    Done,
}

/// The server's short nonces: READY 1, MESSAGEs from 2 (as libzmq).
const READY_NONCE: u64 = 1;

impl Server {
    pub(crate) fn new(
        public: CurvePublicKey,
        secret: CurveSecretKey,
        authenticate: bool,
        socket_type: SocketType,
    ) -> Self {
        Server::ExpectHello(ExpectHello { public, secret, authenticate, socket_type })
    }

    pub(crate) fn handle_command(
        &mut self,
        command: Command,
        local: &Metadata,
        out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError> {
        match (std::mem::replace(self, Server::Done), command) {
            (Server::ExpectHello(state), Command::Other { name, data }) if &name[..] == b"HELLO" => {
                let (next, welcome) = state.hello(&data)?;
                out.push(welcome);
                *self = Server::ExpectInitiate(Box::new(next));
                Ok(HandshakeStatus::InProgress)
            }
            (Server::ExpectInitiate(state), Command::Other { name, data }) if &name[..] == b"INITIATE" => {
                let authenticate = state.authenticate;
                // The cookie key goes with `state`, whatever the outcome.
                let (next, client_key) = state.initiate(&data)?;
                if authenticate {
                    *self = Server::Authenticating(Box::new(next));
                    return Ok(HandshakeStatus::Authenticate(Credentials::Curve { public_key: client_key }));
                }
                next.ready(local, out, None).map(|c| HandshakeStatus::Complete(Box::new(c)))
            }
            (_, other) => Err(unexpected(&other, "during the CURVE handshake (server)")),
        }
    }

    pub(crate) fn handle_auth_reply(
        &mut self,
        reply: AuthReply,
        local: &Metadata,
        out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError> {
        match std::mem::replace(self, Server::Done) {
            Server::Authenticating(state) => {
                state.ready(local, out, Some(reply)).map(|c| HandshakeStatus::Complete(Box::new(c)))
            }
            _ => Err(unasked()),
        }
    }
}

fn cookie_nonce(long_nonce: &[u8]) -> Nonce {
    nonce(COOKIE_PREFIX, long_nonce)
}

impl ExpectHello {
    fn hello(self, data: &[u8]) -> Result<(ExpectInitiate, Command), ConnectionError> {
        // RFC 26: "exactly 200 octets"; after the 6-octet name: version (2), padding (72), C' (32),
        // short nonce (8), signature box (80). No WELCOME is sent for a bad HELLO (A-V1).
        if data.len() != HELLO_LEN - 6 {
            return Err(malformed("HELLO", "not 200 octets"));
        }
        if data[..2] != [1, 0] {
            return Err(malformed("HELLO", "version is not 1.0"));
        }
        // libzmq does not look at the padding; the RFC has it zero, and so do we.
        if data[2..74].iter().any(|&b| b != 0) {
            return Err(malformed("HELLO", "padding is not zero"));
        }
        let client_transient = peer_key(&data[74..106], "client transient key")?;
        let hello_nonce = short_nonce(&data[106..114]);
        let long_secret = Zeroizing::new(*self.secret.as_bytes());
        let hello_key = box_key(&client_transient, &long_secret)?;
        let signature =
            open(&hello_key, &nonce(HELLO_PREFIX, &data[106..114]), &data[114..], "HELLO signature box")?;
        // The signature box holds 64 zero octets; libzmq does not check them, we do.
        if signature.iter().any(|&b| b != 0) {
            return Err(ConnectionError::Protocol(ProtocolError::Cryptographic {
                what: "HELLO signature is not zero",
            }));
        }

        let (transient_secret, transient_public) = transient_keypair()?;
        let mut cookie_key = Zeroizing::new([0u8; 32]);
        random::fill(&mut cookie_key[..])?;
        let mut cookie_long_nonce = [0u8; 16];
        random::fill(&mut cookie_long_nonce)?;
        let mut cookie_plain = Zeroizing::new([0u8; 64]);
        cookie_plain[..32].copy_from_slice(&client_transient);
        cookie_plain[32..].copy_from_slice(&transient_secret[..]);
        let cookie_box = seal_secret(&cookie_key, &cookie_nonce(&cookie_long_nonce), &cookie_plain[..])?;

        let mut welcome_plain = Zeroizing::new(Vec::with_capacity(32 + COOKIE_LEN));
        welcome_plain.put_slice(&transient_public);
        welcome_plain.put_slice(&cookie_long_nonce);
        welcome_plain.put_slice(&cookie_box);
        let mut welcome_long_nonce = [0u8; 16];
        random::fill(&mut welcome_long_nonce)?;
        let welcome_box = seal(&hello_key, &nonce(WELCOME_PREFIX, &welcome_long_nonce), &welcome_plain)?;
        let mut body = Vec::with_capacity(16 + welcome_box.len());
        body.put_slice(&welcome_long_nonce);
        body.put_slice(&welcome_box);
        let welcome = Command::Other { name: Bytes::from_static(b"WELCOME"), data: Bytes::from(body) };
        let next = ExpectInitiate {
            public: self.public,
            authenticate: self.authenticate,
            socket_type: self.socket_type,
            cookie_key,
            client_transient,
            transient_secret,
            hello_nonce,
        };
        Ok((next, welcome))
    }
}

impl ExpectInitiate {
    /// Checks INITIATE. Consumes the state: the cookie key is zeroized on every path out.
    fn initiate(self, data: &[u8]) -> Result<(Authenticating, CurvePublicKey), ConnectionError> {
        // After the 9-octet name: cookie (96), short nonce (8), Box[C + vouch + metadata] (144+).
        if data.len() < INITIATE_MIN_LEN - 9 {
            return Err(malformed("INITIATE", "shorter than 257 octets"));
        }
        let (cookie, rest) = data.split_at(COOKIE_LEN);
        let cookie_plain = open_secret(&self.cookie_key, &cookie_nonce(&cookie[..16]), &cookie[16..])?;
        // The cookie must be the one we made for this connection: a cookie of another connection
        // (or one replayed after its key is gone) fails to open above or here.
        if !ct_eq(&cookie_plain[..32], &self.client_transient)
            || !ct_eq(&cookie_plain[32..], &self.transient_secret[..])
        {
            return Err(cryptographic("INITIATE cookie is not this connection's"));
        }
        let initiate_nonce = short_nonce(&rest[..8]);
        // Nonces increase: INITIATE may not reuse HELLO's (libzmq does not check).
        if initiate_nonce <= self.hello_nonce {
            return Err(ConnectionError::Protocol(ProtocolError::InvalidSequence {
                nonce: initiate_nonce,
                last: self.hello_nonce,
            }));
        }
        let session_key = box_key_bytes(&self.client_transient, &self.transient_secret)?;
        let session = as_box(&session_key);
        let plain = open(&session, &nonce(INITIATE_PREFIX, &rest[..8]), &rest[8..], "INITIATE box")?;
        let client_long = peer_key(&plain[..32], "client long-term key")?;
        let vouch = &plain[32..32 + VOUCH_LEN];
        let vouch_key = box_key(&client_long, &self.transient_secret)?;
        let vouched = open(&vouch_key, &nonce(VOUCH_PREFIX, &vouch[..16]), &vouch[16..], "INITIATE vouch")?;
        // The vouch names the client's transient key and the server it meant. libzmq checks only
        // the first; a vouch made for another server is refused here.
        if !ct_eq(&vouched[..32], &self.client_transient) {
            return Err(cryptographic("vouch names another transient key"));
        }
        if !ct_eq(&vouched[32..], self.public.as_bytes()) {
            return Err(cryptographic("vouch names another server key"));
        }
        let metadata = Metadata::decode(&Bytes::copy_from_slice(&plain[32 + VOUCH_LEN..]))?;
        // Before the authenticator and READY: a peer we may not talk to never sees the handshake
        // complete (libzmq checks the metadata here too). Its ERROR goes in clear, as the handshake's.
        check_peer_metadata(self.socket_type, &metadata)?;
        Ok((
            Authenticating { session_key, metadata, initiate_nonce },
            CurvePublicKey::from_bytes(client_long),
        ))
    }
}

impl Authenticating {
    fn ready(
        self,
        local: &Metadata,
        out: &mut Vec<Command>,
        auth: Option<AuthReply>,
    ) -> Result<Completion, ConnectionError> {
        let mut md = Vec::with_capacity(local.encoded_len());
        local.encode(&mut md);
        let boxed = seal(&as_box(&self.session_key), &nonce(READY_PREFIX, &READY_NONCE.to_be_bytes()), &md)?;
        let mut body = Vec::with_capacity(8 + boxed.len());
        body.put_u64(READY_NONCE);
        body.put_slice(&boxed);
        out.push(Command::Other { name: Bytes::from_static(b"READY"), data: Bytes::from(body) });
        let cipher = CurveCipher::new(&self.session_key, true, READY_NONCE + 1, self.initiate_nonce);
        Ok(Completion { metadata: self.metadata, cipher: Some(cipher), auth })
    }
}

fn cryptographic(what: &'static str) -> ConnectionError {
    ConnectionError::Protocol(ProtocolError::Cryptographic { what })
}

/// `secretbox(plaintext, K)`: authenticator first.
fn seal_secret(key: &[u8; 32], nonce: &Nonce, plaintext: &[u8]) -> Result<Vec<u8>, ConnectionError> {
    use crypto_secretbox::aead::AeadInPlace;
    let cipher = XSalsa20Poly1305::new(key.into());
    let mut out = vec![0u8; TAG_LEN + plaintext.len()];
    out[TAG_LEN..].copy_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(nonce, b"", &mut out[TAG_LEN..])
        .map_err(|_| cryptographic("cookie encryption failed"))?;
    out[..TAG_LEN].copy_from_slice(&tag);
    Ok(out)
}

fn open_secret(key: &[u8; 32], nonce: &Nonce, boxed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ConnectionError> {
    use crypto_secretbox::aead::generic_array::GenericArray;
    use crypto_secretbox::aead::AeadInPlace;
    let cipher = XSalsa20Poly1305::new(key.into());
    let (tag, ciphertext) = boxed.split_at(TAG_LEN.min(boxed.len()));
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    if tag.len() != TAG_LEN || plain.len() != 64 {
        return Err(cryptographic("INITIATE cookie"));
    }
    cipher
        .decrypt_in_place_detached(nonce, b"", &mut plain, GenericArray::from_slice(tag))
        .map_err(|_| cryptographic("INITIATE cookie"))?;
    Ok(plain)
}
