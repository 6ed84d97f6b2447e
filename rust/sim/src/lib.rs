//! Discrete-event simulation of guests, shared rings, rblkback's admission rule and a disk.
