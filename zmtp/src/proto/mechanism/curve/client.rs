//! The CURVE client: HELLO, then INITIATE once the server's WELCOME proves it holds the secret of
//! the key we were given, then READY completes.

use bytes::{BufMut, Bytes};
use zeroize::Zeroizing;

use super::{
    as_box, box_key, box_key_bytes, nonce, open, peer_key, seal, short_nonce, transient_keypair, BoxKey,
    CurveCipher, Secret, COOKIE_LEN, HELLO_PREFIX, INITIATE_PREFIX, READY_MIN_LEN, READY_PREFIX,
    VOUCH_PREFIX, WELCOME_LEN, WELCOME_PREFIX,
};
use crate::proto::command::Command;
use crate::proto::error::ConnectionError;
use crate::proto::keys::{CurvePublicKey, CurveSecretKey};
use crate::proto::mechanism::{malformed, random, unexpected, Completion, HandshakeStatus};
use crate::proto::metadata::Metadata;

/// Our long-term keys and the server's, until INITIATE has used them.
pub(crate) struct Start {
    public: CurvePublicKey,
    secret: CurveSecretKey,
    server: CurvePublicKey,
}

/// HELLO sent; WELCOME must come from the holder of the server's secret.
pub(crate) struct ExpectWelcome {
    long_term: Start,
    transient_secret: Secret,
    transient_public: [u8; 32],
    /// Box key between the server's long-term key and our transient one (HELLO and WELCOME).
    hello_key: BoxKey,
}

/// INITIATE sent; READY completes.
pub(crate) struct ExpectReady {
    /// The session key: the server's transient key and ours (READY's box and the MESSAGE cipher).
    session_key: Secret,
}

/// The CURVE client's states.
pub(crate) enum Client {
    Start(Start),
    ExpectWelcome(Box<ExpectWelcome>),
    ExpectReady(Box<ExpectReady>),
    Done,
}

/// Short nonces of the client: HELLO 1, INITIATE 2, MESSAGEs from 3 (as libzmq).
const HELLO_NONCE: u64 = 1;
const INITIATE_NONCE: u64 = 2;

impl Client {
    pub(crate) fn new(public: CurvePublicKey, secret: CurveSecretKey, server: CurvePublicKey) -> Self {
        Client::Start(Start { public, secret, server })
    }

    pub(crate) fn start(&mut self, out: &mut Vec<Command>) -> Result<(), ConnectionError> {
        let Client::Start(start) = std::mem::replace(self, Client::Done) else {
            return Ok(());
        };
        let (state, hello) = start.hello()?;
        out.push(hello);
        *self = Client::ExpectWelcome(Box::new(state));
        Ok(())
    }

    pub(crate) fn handle_command(
        &mut self,
        command: Command,
        local: &Metadata,
        out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError> {
        match (std::mem::replace(self, Client::Done), command) {
            (Client::ExpectWelcome(state), Command::Other { name, data }) if &name[..] == b"WELCOME" => {
                let (next, initiate) = state.welcome(&data, local)?;
                out.push(initiate);
                *self = Client::ExpectReady(Box::new(next));
                Ok(HandshakeStatus::InProgress)
            }
            (Client::ExpectReady(state), Command::Other { name, data }) if &name[..] == b"READY" => {
                state.ready(&data).map(|c| HandshakeStatus::Complete(Box::new(c)))
            }
            (_, other) => Err(unexpected(&other, "during the CURVE handshake (client)")),
        }
    }
}

impl Start {
    fn hello(self) -> Result<(ExpectWelcome, Command), ConnectionError> {
        let (transient_secret, transient_public) = transient_keypair()?;
        let hello_key = box_key(self.server.as_bytes(), &transient_secret)?;
        let signature = seal(&hello_key, &nonce(HELLO_PREFIX, &HELLO_NONCE.to_be_bytes()), &[0u8; 64])?;
        // version 1.0, 72 octets of padding (anti-amplification: HELLO is longer than WELCOME), C',
        // short nonce, signature box.
        let mut data = Vec::with_capacity(194);
        data.put_slice(&[1, 0]);
        data.put_bytes(0, 72);
        data.put_slice(&transient_public);
        data.put_u64(HELLO_NONCE);
        data.put_slice(&signature);
        let hello = Command::Other { name: Bytes::from_static(b"HELLO"), data: Bytes::from(data) };
        Ok((ExpectWelcome { long_term: self, transient_secret, transient_public, hello_key }, hello))
    }
}

impl ExpectWelcome {
    fn welcome(self, data: &[u8], local: &Metadata) -> Result<(ExpectReady, Command), ConnectionError> {
        // The body after the 8-octet name: long nonce (16) and Box[S' + cookie] (16 + 128).
        if data.len() != WELCOME_LEN - 8 {
            return Err(malformed("WELCOME", "not 168 octets"));
        }
        // A server without the secret of the key we were given cannot make this box.
        let plain = open(&self.hello_key, &nonce(WELCOME_PREFIX, &data[..16]), &data[16..], "WELCOME box")?;
        let server_transient = peer_key(&plain[..32], "server transient key")?;
        let cookie = &plain[32..32 + COOKIE_LEN];

        // The vouch: Box[C' + S](C->S'), proving our long-term key belongs with this transient one
        // and that we meant this server.
        let session_key = box_key_bytes(&server_transient, &self.transient_secret)?;
        let session = as_box(&session_key);
        let long_secret = Zeroizing::new(*self.long_term.secret.as_bytes());
        let vouch_key = box_key(&server_transient, &long_secret)?;
        let mut vouch_nonce = Zeroizing::new([0u8; 16]);
        random::fill(&mut vouch_nonce[..])?;
        let mut vouch_plain = [0u8; 64];
        vouch_plain[..32].copy_from_slice(&self.transient_public);
        vouch_plain[32..].copy_from_slice(self.long_term.server.as_bytes());
        let vouch_box = seal(&vouch_key, &nonce(VOUCH_PREFIX, &vouch_nonce[..]), &vouch_plain)?;

        let mut plaintext = Zeroizing::new(Vec::with_capacity(32 + 96 + local.encoded_len()));
        plaintext.put_slice(self.long_term.public.as_bytes());
        plaintext.put_slice(&vouch_nonce[..]);
        plaintext.put_slice(&vouch_box);
        local.encode(&mut *plaintext);
        let boxed = seal(&session, &nonce(INITIATE_PREFIX, &INITIATE_NONCE.to_be_bytes()), &plaintext)?;

        let mut body = Vec::with_capacity(COOKIE_LEN + 8 + boxed.len());
        body.put_slice(cookie);
        body.put_u64(INITIATE_NONCE);
        body.put_slice(&boxed);
        let initiate = Command::Other { name: Bytes::from_static(b"INITIATE"), data: Bytes::from(body) };
        Ok((ExpectReady { session_key }, initiate))
    }
}

impl ExpectReady {
    fn ready(self, data: &[u8]) -> Result<Completion, ConnectionError> {
        // After the 6-octet name: short nonce (8) and Box[metadata] (16+).
        if data.len() < READY_MIN_LEN - 6 {
            return Err(malformed("READY", "shorter than 30 octets"));
        }
        let n = short_nonce(data);
        let plain =
            open(&as_box(&self.session_key), &nonce(READY_PREFIX, &data[..8]), &data[8..], "READY box")?;
        let metadata = Metadata::decode(&Bytes::copy_from_slice(&plain))?;
        Ok(Completion {
            metadata,
            cipher: Some(CurveCipher::new(&self.session_key, false, 3, n)),
            auth: None,
        })
    }
}
