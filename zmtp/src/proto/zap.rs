//! ZAP (RFC 27, ZeroMQ Authentication Protocol) messages: the request a server sends to the handler
//! bound at [`ZAP_ENDPOINT`], and the handler's reply, parsed strictly so that a broken or hostile
//! handler fails closed (reliability.md A-Z1: wrong version, wrong request id, a status that is not
//! 200/300/400/500, too many or too few frames: the peer is refused).
//!
//! ```text
//! request: "" | "1.0" | request-id | domain | address | identity | mechanism | credentials...
//! reply:   "" | "1.0" | request-id | status-code | status-text | user-id | metadata
//! ```
//! The leading empty frame is the REQ/REP envelope delimiter: a handler may be a REP or a ROUTER.

use bytes::Bytes;

use super::mechanism::{AuthReply, Credentials};
use super::metadata::Metadata;

/// Where a ZAP handler binds (RFC 27).
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
/// The protocol version frame.
pub const VERSION: &[u8] = b"1.0";

/// Why a ZAP reply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZapError {
    /// A reply has exactly 7 frames (with the delimiter).
    #[error("ZAP reply of {0} frames, expected 7")]
    FrameCount(usize),
    /// The first frame must be the empty delimiter.
    #[error("ZAP reply without its empty delimiter frame")]
    NoDelimiter,
    /// The version must be "1.0".
    #[error("ZAP reply of another version")]
    Version,
    /// The request id must be the request's.
    #[error("ZAP reply to another request")]
    RequestId,
    /// The status code must be 200, 300, 400 or 500.
    #[error("ZAP reply with an invalid status code")]
    Status,
    /// The metadata frame is not ZMTP metadata.
    #[error("ZAP reply with malformed metadata")]
    Metadata,
}

/// The frames of a ZAP request (delimiter first).
pub fn encode_request(
    request_id: &[u8],
    domain: &[u8],
    address: &[u8],
    identity: &[u8],
    credentials: &Credentials,
) -> Vec<Bytes> {
    let mut frames = vec![
        Bytes::new(),
        Bytes::from_static(VERSION),
        Bytes::copy_from_slice(request_id),
        Bytes::copy_from_slice(domain),
        Bytes::copy_from_slice(address),
        Bytes::copy_from_slice(identity),
        Bytes::copy_from_slice(credentials.mechanism().trimmed()),
    ];
    match credentials {
        Credentials::Null => {}
        Credentials::Plain { username, password } => {
            frames.push(username.clone());
            frames.push(password.expose().clone());
        }
        Credentials::Curve { public_key } => frames.push(Bytes::copy_from_slice(public_key.as_bytes())),
    }
    frames
}

/// Parses a ZAP reply to the request `request_id`.
///
/// # Errors
/// [`ZapError`] for anything but a well-formed reply to this request: the caller refuses the peer.
pub fn parse_reply(frames: &[Bytes], request_id: &[u8]) -> Result<AuthReply, ZapError> {
    let [delimiter, version, id, status, text, user_id, metadata] = frames else {
        return Err(ZapError::FrameCount(frames.len()));
    };
    if !delimiter.is_empty() {
        return Err(ZapError::NoDelimiter);
    }
    if &version[..] != VERSION {
        return Err(ZapError::Version);
    }
    if &id[..] != request_id {
        return Err(ZapError::RequestId);
    }
    let status = match &status[..] {
        b"200" => 200,
        b"300" => 300,
        b"400" => 400,
        b"500" => 500,
        _ => return Err(ZapError::Status),
    };
    let metadata = if metadata.is_empty() {
        Metadata::new()
    } else {
        Metadata::decode(metadata).map_err(|_| ZapError::Metadata)?
    };
    Ok(AuthReply { status, status_text: text.clone(), user_id: user_id.clone(), metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(parts: &[&'static [u8]]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::from_static(p)).collect()
    }

    #[test]
    fn a_good_reply_parses() {
        let r = parse_reply(&reply(&[b"", b"1.0", b"7", b"200", b"OK", b"alice", b""]), b"7").unwrap();
        assert_eq!((r.status, &r.user_id[..]), (200, &b"alice"[..]));
        let md = b"\x04Role\x00\x00\x00\x05admin";
        let r = parse_reply(&reply(&[b"", b"1.0", b"7", b"400", b"No", b"", md]), b"7").unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.metadata.get("Role").map(|v| &v[..]), Some(&b"admin"[..]));
    }

    #[test]
    fn broken_replies_fail_closed() {
        let cases: [(&[&'static [u8]], ZapError); 7] = [
            (&[b"", b"2.0", b"7", b"200", b"", b"", b""], ZapError::Version),
            (&[b"", b"1.0", b"8", b"200", b"", b"", b""], ZapError::RequestId),
            (&[b"", b"1.0", b"7", b"abc", b"", b"", b""], ZapError::Status),
            (&[b"", b"1.0", b"7", b"201", b"", b"", b""], ZapError::Status),
            (&[b"", b"1.0", b"7", b"200", b"", b"", b"", b""], ZapError::FrameCount(8)),
            (&[b"x", b"1.0", b"7", b"200", b"", b"", b""], ZapError::NoDelimiter),
            (&[b"", b"1.0", b"7", b"200", b"", b"", b"\x05"], ZapError::Metadata),
        ];
        for (parts, want) in cases {
            assert_eq!(parse_reply(&reply(parts), b"7"), Err(want));
        }
        assert_eq!(parse_reply(&[], b"7"), Err(ZapError::FrameCount(0)));
    }

    #[test]
    fn requests_carry_the_mechanism_and_its_credentials() {
        let key = crate::proto::CurveSecretKey::from_bytes([5; 32]).public_key();
        let f = encode_request(b"1", b"global", b"127.0.0.1", b"", &Credentials::Curve { public_key: key });
        assert_eq!(f.len(), 8);
        assert_eq!(&f[6][..], b"CURVE");
        assert_eq!(&f[7][..], key.as_bytes());
        let f = encode_request(b"1", b"", b"", b"", &Credentials::Null);
        assert_eq!((f.len(), &f[6][..]), (7, &b"NULL"[..]));
    }
}
