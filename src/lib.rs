//! # sgsim — a packet-filter simulator and rule-matching engine for cloud security groups
//!
//! sgsim answers the question an engineer asks before revoking a security-group rule on
//! Alibaba Cloud ECS or AWS EC2: *what will stop working?* It loads the real security
//! groups, applies the revoke exactly as the cloud API would, compiles the rules before and
//! after, and judges traffic against both.
//!
//! ```text
//! provider exports (JSON)  ──►  model (atomic rules, groups, ENIs, prefix lists)
//! revoke request (native)  ──►  revoke semantics ──► new model        (errors exactly as the API)
//! model ──► compile: decision trees over five header fields, priority order, drop before accept
//!       ──► Arc-swapped compiled table (readers never see a half-applied revoke)
//! traffic (pcap/pcapng, flow logs, synthetic) ──► decode ──► classify in parallel (rayon)
//! before vs after ──► what-if report: flows that flip, deciding rules, exact header-space diff
//! ```
//!
//! ## Stages
//!
//! - [`model`]: provider-neutral, validated values. A [`model::State`] holds groups, atomic
//!   rules, ENIs, prefix lists and VPCs; it is also sgsim's snapshot format.
//! - [`classify`]: the evaluation semantics of both providers, the [`classify::Engine`]
//!   trait, the linear-scan [`classify::reference::Reference`] engine (the oracle), and the
//!   [`classify::live::Live`] table that swaps compiled tables atomically.
//! - [`compile`]: model → immutable [`compile::Table`]. Per ENI and direction the rules are
//!   ordered, references resolved to prefixes, and indexed by decision trees; the table
//!   reports its [`compile::Table::memory_usage`] and revises itself cheaply after a revoke.
//! - [`classbench`]: the ClassBench filter and trace formats, read into a generic state.
//!
//! ## Guarantees
//!
//! - Every engine agrees with the reference on every packet: the behaviour suite
//!   (`tests/data/suite/`), property tests and fuzz targets check it.
//! - Parsers turn bad input into typed errors that say where (file, line, field); they never
//!   panic. The library reads no clock and no OS randomness.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bench;
pub mod classbench;
pub mod classify;
pub mod compile;
pub mod fuzz;
pub mod model;
pub mod packet;
pub mod provider;
pub mod whatif;
