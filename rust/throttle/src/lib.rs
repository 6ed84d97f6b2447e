#![no_std]
#![forbid(unsafe_code)]
//! Per-domain I/O budget accounting for rblkback.
//!
//! Pure logic over integers: no allocation, no floating point, no clocks. Built as a host
//! library and as a module of the kernel crate (included with `#[path]`), so sibling modules
//! are named through `super::`, never `crate::`.

pub mod params;
