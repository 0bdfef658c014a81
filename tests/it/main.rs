//! sgsim's integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used)]

mod aliyun;
mod aws;
mod classbench;
#[cfg(feature = "cluster")]
mod cluster;
mod engines;
#[cfg(feature = "fleet")]
mod fleet;
mod flowlogs;
mod fuzz;
mod gen;
mod hardening;
mod impact;
mod s3;
#[cfg(feature = "serve")]
mod serve;
mod suite;
mod traffic;
mod whatif;
