//! A minimal xenstore client over `/dev/xen/xenbus` (the guest kernel's xenstore device).
//!
//! Wire protocol (`xen/include/public/io/xs_wire.h`): every message is a 16-byte header
//! `{type: u32, req_id: u32, tx_id: u32, len: u32}` (native endian) followed by `len`
//! payload bytes. Requests used here: `XS_READ` (payload `path\0`; reply: the value),
//! `XS_WRITE` (`path\0value`), `XS_RM` (`path\0`) and `XS_DIRECTORY` (`path\0`; reply:
//! NUL-separated names). A failed request is answered with `XS_ERROR` and an errno name
//! such as `ENOENT`. No watches: callers poll, which keeps replies strictly in order.
//! Relative paths are relative to this domain's home, `/local/domain/<domid>`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

/// `XS_DIRECTORY`.
const XS_DIRECTORY: u32 = 1;
/// `XS_READ`.
const XS_READ: u32 = 2;
/// `XS_WRITE`.
const XS_WRITE: u32 = 11;
/// `XS_RM`.
const XS_RM: u32 = 13;
/// `XS_ERROR`: the payload names the errno.
const XS_ERROR: u32 = 16;
/// Largest payload xenstored accepts (`XENSTORE_PAYLOAD_MAX`).
const PAYLOAD_MAX: usize = 4096;

/// Why a xenstore request failed.
#[derive(Debug)]
pub(crate) enum XsError {
    /// The device failed.
    Io(io::Error),
    /// xenstored answered `XS_ERROR` with this errno name (e.g. `ENOENT`).
    Xs(String),
}

impl std::fmt::Display for XsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XsError::Io(e) => write!(f, "xenbus device: {e}"),
            XsError::Xs(e) => write!(f, "xenstore: {e}"),
        }
    }
}

impl From<io::Error> for XsError {
    fn from(e: io::Error) -> Self {
        XsError::Io(e)
    }
}

/// Encodes one request message.
fn encode(kind: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(16 + payload.len());
    for v in [kind, req_id, 0, payload.len() as u32] {
        msg.extend_from_slice(&v.to_ne_bytes());
    }
    msg.extend_from_slice(payload);
    msg
}

/// Decodes a 16-byte reply header into `(type, req_id, len)`.
fn decode_header(h: &[u8; 16]) -> (u32, u32, usize) {
    let word = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    (word(0), word(4), word(12) as usize)
}

/// A connection to xenstored.
pub(crate) struct Xenstore {
    dev: File,
    next_req: u32,
}

impl Xenstore {
    /// Opens `/dev/xen/xenbus`.
    pub(crate) fn open() -> io::Result<Xenstore> {
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/xen/xenbus")?;
        Ok(Xenstore { dev, next_req: 1 })
    }

    fn request(&mut self, kind: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        if payload.len() > PAYLOAD_MAX {
            return Err(XsError::Xs("E2BIG".into()));
        }
        let req_id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        // One write per message: the device takes whole messages.
        self.dev.write_all(&encode(kind, req_id, payload))?;
        let mut header = [0u8; 16];
        self.dev.read_exact(&mut header)?;
        let (rtype, rid, len) = decode_header(&header);
        let mut body = vec![0u8; len];
        self.dev.read_exact(&mut body)?;
        if rid != req_id {
            return Err(XsError::Xs(format!("reply {rid} to request {req_id}")));
        }
        if rtype == XS_ERROR {
            let name = String::from_utf8_lossy(&body);
            return Err(XsError::Xs(name.trim_end_matches('\0').to_string()));
        }
        Ok(body)
    }

    /// The value at `path`.
    pub(crate) fn read(&mut self, path: &str) -> Result<String, XsError> {
        let body = self.request(XS_READ, &nul_terminated(path))?;
        Ok(String::from_utf8_lossy(&body)
            .trim_end_matches('\0')
            .to_string())
    }

    /// The value at `path`, or `None` if it does not exist (or cannot be read).
    pub(crate) fn try_read(&mut self, path: &str) -> Option<String> {
        self.read(path).ok()
    }

    /// Writes `value` at `path`.
    pub(crate) fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        let mut payload = nul_terminated(path);
        payload.extend_from_slice(value.as_bytes());
        self.request(XS_WRITE, &payload).map(|_| ())
    }

    /// Removes `path` and everything below it; a missing path is not an error.
    pub(crate) fn remove(&mut self, path: &str) -> Result<(), XsError> {
        match self.request(XS_RM, &nul_terminated(path)) {
            Err(XsError::Xs(e)) if e == "ENOENT" => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The names directly below `path`.
    pub(crate) fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let body = self.request(XS_DIRECTORY, &nul_terminated(path))?;
        Ok(body
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect())
    }
}

fn nul_terminated(path: &str) -> Vec<u8> {
    let mut v = path.as_bytes().to_vec();
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_write_as_header_and_payload() {
        let msg = encode(XS_WRITE, 7, b"device/vbd/51712/state\x004");
        assert_eq!(&msg[0..4], &11u32.to_ne_bytes());
        assert_eq!(&msg[4..8], &7u32.to_ne_bytes());
        assert_eq!(&msg[8..12], &0u32.to_ne_bytes());
        assert_eq!(&msg[12..16], &24u32.to_ne_bytes());
        assert_eq!(&msg[16..], b"device/vbd/51712/state\x004");
    }

    #[test]
    fn decodes_a_reply_header() {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&XS_ERROR.to_ne_bytes());
        h[4..8].copy_from_slice(&9u32.to_ne_bytes());
        h[12..16].copy_from_slice(&7u32.to_ne_bytes());
        assert_eq!(decode_header(&h), (XS_ERROR, 9, 7));
    }
}
