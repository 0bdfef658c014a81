//! Traffic: decoded packets from captures, flow logs and synthetic generators.

pub mod synth;
