//! Responses: building one for a request and encoding it for the frontend's ABI.
//!
//! The backend encodes a response into a private buffer and copies
//! [`EncodedResponse::as_bytes`] into the ring entry at the response producer index.
//! Padding bytes are written as zero so no stale dom0 data reaches the guest.

use super::abi::{Abi, MAX_RESPONSE_SIZE, RESPONSE_ID, RESPONSE_OPERATION, RESPONSE_STATUS};
use super::protocol::Status;
use super::request::Request;
use super::wire::{get_i16, get_u64, get_u8, put_i16, put_u64, put_u8};

/// A `blkif_response`: which request finished, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Response {
    /// The request's `id`, echoed back.
    pub id: u64,
    /// The operation code to echo (see [`Request::response_operation`]).
    pub operation: u8,
    /// The outcome.
    pub status: Status,
}

impl Response {
    /// The response to `request` with outcome `status`, echoing its `id` and the operation
    /// the frontend expects back.
    pub const fn for_request(request: &Request, status: Status) -> Response {
        Response {
            id: request.id,
            operation: request.response_operation(),
            status,
        }
    }

    /// Encodes the response in `abi`'s layout.
    pub fn encode(&self, abi: Abi) -> EncodedResponse {
        let mut bytes = [0u8; MAX_RESPONSE_SIZE];
        put_u64(&mut bytes, RESPONSE_ID, self.id);
        put_u8(&mut bytes, RESPONSE_OPERATION, self.operation);
        put_i16(&mut bytes, RESPONSE_STATUS, self.status.code());
        EncodedResponse {
            bytes,
            len: abi.response_size(),
        }
    }

    /// Decodes a response in `abi`'s layout (the frontend's side, for tests and the
    /// simulator). `None` if `bytes` is too short or the status code is not one the
    /// protocol defines.
    pub fn decode(abi: Abi, bytes: &[u8]) -> Option<Response> {
        let bytes = bytes.get(..abi.response_size())?;
        Some(Response {
            id: get_u64(bytes, RESPONSE_ID),
            operation: get_u8(bytes, RESPONSE_OPERATION),
            status: Status::from_code(get_i16(bytes, RESPONSE_STATUS))?,
        })
    }
}

/// A response encoded for one ABI, ready to copy into a ring entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedResponse {
    /// Encoded bytes; only the first `len` belong to the response.
    bytes: [u8; MAX_RESPONSE_SIZE],
    /// `Abi::response_size` of the ABI it was encoded for.
    len: usize,
}

impl EncodedResponse {
    /// The bytes to copy to the start of the ring entry.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::protocol::op;
    use super::super::request::RequestKind;
    use super::*;

    #[test]
    fn encodes_c_layout() {
        let response = Response {
            id: 0x0102_0304_0506_0708,
            operation: op::WRITE,
            status: Status::NotSupported,
        };
        let x64 = response.encode(Abi::X86_64);
        assert_eq!(
            x64.as_bytes(),
            &[8, 7, 6, 5, 4, 3, 2, 1, 1, 0, 0xfe, 0xff, 0, 0, 0, 0]
        );
        let x32 = response.encode(Abi::X86_32);
        assert_eq!(x32.as_bytes(), &[8, 7, 6, 5, 4, 3, 2, 1, 1, 0, 0xfe, 0xff]);
    }

    #[test]
    fn status_codes_on_the_wire() {
        for (status, wire) in [
            (Status::Okay, [0u8, 0]),
            (Status::Error, [0xff, 0xff]),
            (Status::NotSupported, [0xfe, 0xff]),
        ] {
            let response = Response {
                id: 0,
                operation: 0,
                status,
            };
            assert_eq!(response.encode(Abi::X86_32).as_bytes()[10..12], wire);
        }
    }

    #[test]
    fn round_trips_and_rejects_bad_input() {
        let response = Response {
            id: u64::MAX,
            operation: 255,
            status: Status::Error,
        };
        for abi in Abi::ALL {
            let encoded = response.encode(abi);
            assert_eq!(Response::decode(abi, encoded.as_bytes()), Some(response));
            assert_eq!(Response::decode(abi, &encoded.as_bytes()[..11]), None);
        }
        let mut bad = [0u8; 16];
        bad[10] = 5;
        assert_eq!(Response::decode(Abi::X86_64, &bad), None);
    }

    #[test]
    fn indirect_requests_are_answered_with_their_inner_operation() {
        let request = Request {
            id: 11,
            kind: RequestKind::Indirect(super::super::request::IndirectRequest {
                indirect_op: op::READ,
                nr_segments: 1,
                handle: 0,
                sector_number: 0,
                indirect_grefs: [0; 8],
            }),
        };
        let response = Response::for_request(&request, Status::Okay);
        assert_eq!(
            response,
            Response {
                id: 11,
                operation: op::READ,
                status: Status::Okay
            }
        );
    }
}
