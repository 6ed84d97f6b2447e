// SPDX-License-Identifier: GPL-2.0

//! The thin abstraction layer: safe Rust interfaces over the C and Xen APIs the backend uses.
//!
//! This is the only part of the module allowed to contain `unsafe`; every `unsafe` block
//! carries a `// SAFETY:` comment and every `unsafe fn` a `# Safety` section. Code outside
//! `sys` is safe Rust (`tests/check-unsafe` checks both rules).
//!
//! Callbacks from C (xenbus, watches, event channels, workers, bio completions) reach Rust
//! objects through `Arc` references that the registering handle owns and releases only
//! after the C side guarantees no further callback.

pub mod bindings;
pub mod block;
pub mod ctldir;
pub mod domains;
pub mod evtchn;
pub mod groups;
pub mod params;
pub mod ring;
pub mod sync;
pub mod time;
pub mod wire_layout;
pub mod worker;
pub mod xenbus;
