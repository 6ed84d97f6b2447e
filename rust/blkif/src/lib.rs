#![no_std]
#![forbid(unsafe_code)]
//! The Xen block interface (`blkif`) as rblkback sees it: wire layouts, ring index
//! arithmetic and validation of frontend-written requests.
//!
//! Built both as a host library and as a module of the kernel crate (included with
//! `#[path]`), so sibling modules are named through `super::`, never from the crate root.
//!
//! Per ring entry the backend:
//!
//! 1. takes the next index from [`ring::BackRing::consume_request`] and copies
//!    `abi.request_size()` bytes of that entry into a private buffer;
//! 2. decodes the copy with [`request::parse_request`] (never fails);
//! 3. checks it with [`validate::validate`]; an indirect request additionally needs its
//!    segment pages copied and checked by [`validate::PendingIndirect::complete`];
//! 4. performs the [`validate::Action`], or answers the [`validate::Rejection`]'s
//!    status at once;
//! 5. answers with [`response::Response`], written at
//!    [`ring::BackRing::produce_response`] and made visible by
//!    [`ring::BackRing::publish_responses`].
//!
//! Nothing here allocates, uses floating point or panics on any input.

pub mod abi;
pub mod arrivals;
pub mod indirect;
pub mod persistent;
pub mod protocol;
pub mod request;
pub mod response;
pub mod ring;
pub mod validate;
pub mod xenstore;

mod wire;

#[cfg(test)]
mod test_support;
