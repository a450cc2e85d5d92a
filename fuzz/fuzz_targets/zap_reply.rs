//! ZAP (RFC 27) replies: `zmtp::proto::zap::parse_reply` on arbitrary frames, against a reference
//! written here from the module's rules (reliability.md A-Z1: a broken or hostile handler fails
//! closed).
//!
//! Input layout: octet 0 (bit 0: the request id is the reply's third frame, so that the id check
//! passes; bit 1: the first two frames are replaced by the empty delimiter and "1.0"), then
//! length-prefixed chunks (one length octet each, cut at the end of the input): the request id, then
//! the reply's frames.
//!
//! Invariants: no panic; `parse_reply` accepts exactly what the reference accepts and refuses the
//! rest with the reference's error (frame count, then delimiter, version, request id, status
//! 200/300/400/500 spelled exactly, metadata); an accepted reply carries the status, text, user id
//! and metadata frames unchanged, and allows only for "200"; a reply built from the input's text, user
//! id and metadata (when that metadata decodes) parses back to them; error messages format.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zmtp::proto::zap::{parse_reply, ZapError, VERSION};
use zmtp::proto::Metadata;

fn reference(frames: &[Bytes], request_id: &[u8]) -> Result<(u16, Metadata), ZapError> {
    if frames.len() != 7 {
        return Err(ZapError::FrameCount(frames.len()));
    }
    if !frames[0].is_empty() {
        return Err(ZapError::NoDelimiter);
    }
    if frames[1] != b"1.0"[..] {
        return Err(ZapError::Version);
    }
    if frames[2] != request_id {
        return Err(ZapError::RequestId);
    }
    let status = match std::str::from_utf8(&frames[3]) {
        Ok(s @ ("200" | "300" | "400" | "500")) => s.parse().expect("a status"),
        _ => return Err(ZapError::Status),
    };
    let metadata = if frames[6].is_empty() {
        Metadata::new()
    } else {
        Metadata::decode(&frames[6]).map_err(|_| ZapError::Metadata)?
    };
    Ok((status, metadata))
}

fn chunks(mut data: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let n = usize::from(len).min(rest.len());
        out.push(Bytes::copy_from_slice(&rest[..n]));
        data = &rest[n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut parts = chunks(rest);
    let mut request_id = if parts.is_empty() { Bytes::new() } else { parts.remove(0) };
    let mut frames = parts;
    if control & 0x02 != 0 && frames.len() >= 2 {
        frames[0] = Bytes::new();
        frames[1] = Bytes::from_static(VERSION);
    }
    if control & 0x01 != 0 && frames.len() >= 3 {
        request_id = frames[2].clone();
    }

    let got = parse_reply(&frames, &request_id);
    match (&got, reference(&frames, &request_id)) {
        (Ok(reply), Ok((status, metadata))) => {
            assert_eq!(reply.status, status);
            assert_eq!(reply.is_allowed(), status == 200);
            assert_eq!(reply.status_text, frames[4]);
            assert_eq!(reply.user_id, frames[5]);
            assert_eq!(reply.metadata, metadata);
        }
        (Err(e), Err(want)) => {
            assert_eq!(e, &want, "frames {frames:?}");
            let _ = e.to_string();
        }
        (got, want) => panic!("parse_reply {got:?}, reference {want:?}, frames {frames:?}"),
    }

    // A well-formed reply made of the input's text, user id and (decodable) metadata parses back.
    let text = frames.first().cloned().unwrap_or_default();
    let user = frames.get(1).cloned().unwrap_or_default();
    let metadata = frames.get(2).cloned().unwrap_or_default();
    if metadata.is_empty() || Metadata::decode(&metadata).is_ok() {
        for status in ["200", "300", "400", "500"] {
            let reply = vec![
                Bytes::new(),
                Bytes::from_static(VERSION),
                request_id.clone(),
                Bytes::from_static(status.as_bytes()),
                text.clone(),
                user.clone(),
                metadata.clone(),
            ];
            let r = parse_reply(&reply, &request_id).expect("a well-formed reply parses");
            assert_eq!(r.status.to_string(), status);
            assert_eq!((&r.status_text, &r.user_id), (&text, &user));
        }
    }
});
