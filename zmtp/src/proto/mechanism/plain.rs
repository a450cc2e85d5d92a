//! PLAIN (RFC 24): the client sends a user name and password in clear text; the server asks its
//! authenticator, then both exchange metadata.
//!
//! ```text
//! C: HELLO username password    S: WELCOME
//! C: INITIATE metadata          S: READY metadata
//! ```
//! Use it only where the network is trusted: nothing is encrypted.

use bytes::{BufMut, Bytes};

use super::{malformed, unasked, unexpected, AuthReply, Completion, Credentials, HandshakeStatus, Password};
use crate::proto::command::Command;
use crate::proto::connection::check_peer_metadata;
use crate::proto::error::ConnectionError;
use crate::proto::metadata::Metadata;
use crate::proto::socket_type::SocketType;

fn command(name: &'static str, data: Bytes) -> Command {
    Command::Other { name: Bytes::from_static(name.as_bytes()), data }
}

fn encode_metadata(md: &Metadata) -> Bytes {
    let mut out = Vec::with_capacity(md.encoded_len());
    md.encode(&mut out);
    Bytes::from(out)
}

/// The PLAIN client's states.
pub(crate) enum Client {
    /// Before the greeting exchange: holds the credentials.
    Start { username: Bytes, password: Password },
    /// HELLO sent.
    ExpectWelcome,
    /// INITIATE sent.
    ExpectReady,
    /// Complete (or failed).
    Done,
}

impl Client {
    pub(crate) fn new(username: Bytes, password: Password) -> Self {
        Client::Start { username, password }
    }

    pub(crate) fn start(&mut self, out: &mut Vec<Command>) {
        if let Client::Start { username, password } = std::mem::replace(self, Client::ExpectWelcome) {
            // Lengths were checked (0-255) where the credentials were configured; cut to be sure.
            let user = &username[..username.len().min(255)];
            let pass = &password.expose()[..password.expose().len().min(255)];
            let mut data = Vec::with_capacity(2 + user.len() + pass.len());
            data.put_u8(user.len() as u8);
            data.put_slice(user);
            data.put_u8(pass.len() as u8);
            data.put_slice(pass);
            out.push(command("HELLO", Bytes::from(data)));
        }
    }

    pub(crate) fn handle_command(
        &mut self,
        cmd: Command,
        local: &Metadata,
        out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError> {
        match (std::mem::replace(self, Client::Done), cmd) {
            (Client::ExpectWelcome, Command::Other { name, data }) if &name[..] == b"WELCOME" => {
                if !data.is_empty() {
                    return Err(malformed("WELCOME", "PLAIN WELCOME has no body"));
                }
                out.push(command("INITIATE", encode_metadata(local)));
                *self = Client::ExpectReady;
                Ok(HandshakeStatus::InProgress)
            }
            (Client::ExpectReady, Command::Ready(metadata)) => {
                Ok(HandshakeStatus::Complete(Box::new(Completion { metadata, cipher: None, auth: None })))
            }
            (_, other) => Err(unexpected(&other, "during the PLAIN handshake (client)")),
        }
    }
}

/// The PLAIN server's states.
pub(crate) enum Server {
    /// Waiting for HELLO.
    ExpectHello { authenticate: bool, socket_type: SocketType },
    /// HELLO received; the authenticator is deciding.
    Authenticating { socket_type: SocketType },
    /// WELCOME sent; waiting for INITIATE.
    ExpectInitiate { auth: Option<AuthReply>, socket_type: SocketType },
    /// Complete (or failed).
    Done,
}

impl Server {
    pub(crate) fn new(authenticate: bool, socket_type: SocketType) -> Self {
        Server::ExpectHello { authenticate, socket_type }
    }

    pub(crate) fn handle_command(
        &mut self,
        cmd: Command,
        local: &Metadata,
        out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError> {
        match (std::mem::replace(self, Server::Done), cmd) {
            (Server::ExpectHello { authenticate, socket_type }, Command::Other { name, data })
                if &name[..] == b"HELLO" =>
            {
                let (username, password) = parse_hello(&data)?;
                if authenticate {
                    *self = Server::Authenticating { socket_type };
                    return Ok(HandshakeStatus::Authenticate(Credentials::Plain {
                        username,
                        password: Password::new(password),
                    }));
                }
                // No authenticator: libzmq without a ZAP handler accepts any credentials.
                out.push(command("WELCOME", Bytes::new()));
                *self = Server::ExpectInitiate { auth: None, socket_type };
                Ok(HandshakeStatus::InProgress)
            }
            (Server::ExpectInitiate { auth, socket_type }, Command::Other { name, data })
                if &name[..] == b"INITIATE" =>
            {
                let metadata = Metadata::decode(&data)?;
                // Before READY: a refused peer never sees the handshake complete.
                check_peer_metadata(socket_type, &metadata)?;
                out.push(Command::Ready(local.clone()));
                Ok(HandshakeStatus::Complete(Box::new(Completion { metadata, cipher: None, auth })))
            }
            (_, other) => Err(unexpected(&other, "during the PLAIN handshake (server)")),
        }
    }

    pub(crate) fn handle_auth_reply(
        &mut self,
        reply: AuthReply,
        out: &mut Vec<Command>,
    ) -> Result<HandshakeStatus, ConnectionError> {
        match std::mem::replace(self, Server::Done) {
            Server::Authenticating { socket_type } => {
                out.push(command("WELCOME", Bytes::new()));
                *self = Server::ExpectInitiate { auth: Some(reply), socket_type };
                Ok(HandshakeStatus::InProgress)
            }
            _ => Err(unasked()),
        }
    }
}

/// Splits a PLAIN HELLO body: `username-len username password-len password`, nothing after.
fn parse_hello(data: &Bytes) -> Result<(Bytes, Bytes), ConnectionError> {
    let bad = |what| malformed("HELLO", what);
    let user_len = usize::from(*data.first().ok_or_else(|| bad("user name length missing"))?);
    let user_end = 1 + user_len;
    if data.len() < user_end + 1 {
        return Err(bad("user name runs past the end"));
    }
    let pass_len = usize::from(data[user_end]);
    let pass_start = user_end + 1;
    if data.len() != pass_start + pass_len {
        return Err(bad("password length does not match the rest of the command"));
    }
    Ok((data.slice(1..user_end), data.slice(pass_start..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_fields_of_0_and_255_octets_parse_and_256_cannot_be_said() {
        assert_eq!(parse_hello(&Bytes::from_static(b"\x00\x00")).ok(), Some((Bytes::new(), Bytes::new())));
        let mut long = vec![255u8];
        long.extend([b'u'; 255]);
        long.push(255);
        long.extend([b'p'; 255]);
        let (u, p) = parse_hello(&Bytes::from(long.clone())).unwrap();
        assert_eq!((u.len(), p.len()), (255, 255));
        // A 256th octet of password does not fit its length octet: the body is malformed.
        long.push(b'p');
        assert!(parse_hello(&Bytes::from(long)).is_err());
    }

    #[test]
    fn malformed_hellos_are_refused() {
        for body in [&b""[..], b"\x05ab", b"\x01a", b"\x01a\x02b", b"\x01a\x01bc"] {
            assert!(parse_hello(&Bytes::copy_from_slice(body)).is_err(), "{body:?}");
        }
    }
}
