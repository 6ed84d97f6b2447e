// SPDX-License-Identifier: GPL-2.0

//! The thin abstraction layer: safe Rust interfaces over the C and Xen APIs the backend uses.
//!
//! This is the only part of the module allowed to contain `unsafe`; every `unsafe` block
//! carries a `// SAFETY:` comment and every `unsafe fn` a `# Safety` section. Code outside
//! `sys` is safe Rust (a test in `tests/` checks both rules).

pub mod bindings;
pub mod params;
