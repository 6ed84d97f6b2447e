#![no_std]
#![forbid(unsafe_code)]
//! The Xen block interface (`blkif`) as rblkback sees it.
