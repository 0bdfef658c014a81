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
//! model ──► compile: decision trees or cross-product tables over five header fields,
//!           ranked in priority order, drop before accept
//!       ──► Arc-swapped compiled table (readers never see a half-applied revoke)
//! traffic (pcap/pcapng, flow logs, synthetic) ──► decode ──► classify in parallel (rayon)
//! before vs after ──► what-if report: connections broken by service, deciding rules, exact header-space diff
//! ```
//!
//! ## Stages
//!
//! - [`model`]: provider-neutral, validated values. A [`model::State`] holds groups, atomic
//!   rules, ENIs, prefix lists and VPCs; it is also sgsim's snapshot format. A
//!   [`model::Header`] is the five fields a security group looks at; a
//!   [`model::IpProtocol`] says what its protocol number carries (ports, ICMP type and code).
//! - [`provider`]: the clouds' own formats. [`provider::aws`] and [`provider::aliyun`]
//!   import describe-call exports (recognised by shape), parse revoke requests in every form
//!   users have (query string, URL, form body, JSON), apply them with the API's exact
//!   matching rules and validation order, and render the response or error the API returns.
//!   A rejected revoke changes nothing.
//! - [`classify`]: the evaluation semantics of both providers (inner access first, rules
//!   in order, defaults, unknown verdicts for unresolved references), the
//!   [`classify::Engine`] trait (single, batch and rayon-parallel lookups) and the
//!   linear-scan [`classify::reference::Reference`] engine (the oracle). It imports only
//!   the model.
//! - `index` (internal): the lookup structures over five-field boxes, each with its
//!   builder beside its layout: decision trees (`index::tree`) and RFC-style cross-product
//!   tables (`index::rfc`: a fixed sixteen loads a packet, or where the final product would
//!   not fit, address lists intersected with service bitsets).
//! - [`compile`]: model → immutable [`compile::Table`], an [`classify::Engine`]. Per group
//!   and direction each rule is lowered to a box and indexed, ranked in evaluation order so
//!   that every ENI's group set shares its groups' indexes; prefix-list references become
//!   prefixes and group references a membership condition resolved once per packet. The
//!   table reports its [`compile::Table::memory_usage`] and revises itself cheaply after a
//!   revoke; [`compile::live::Live`] owns the `ArcSwap` that swaps tables atomically.
//! - [`packet`]: traffic. Streaming pcap/pcapng decoding behind a bounds-checked layer over
//!   `pnet_packet` (chunks read ahead on their own thread and decoded on the rayon pool),
//!   AWS and Alibaba flow logs as the clouds deliver them ([`packet::input`]: folders in
//!   the S3 layouts, time windows, `.gz`, [`packet::parquet`], and `s3://` with the `s3`
//!   feature; with the `fleet` feature `packet::fleet` scans Parquet with Apache
//!   DataFusion on every core, in file order), and seeded synthetic traffic. A decoded
//!   [`packet::Packet`] carries its [`model::Header`] and one [`packet::Transport`] (ports
//!   and TCP flags, or ICMP type and code, as read). It imports only the model.
//! - [`track`]: evaluation of traffic at the right ENI and direction with connection state
//!   (AWS untracked flows included), partitioned by flow for rayon, or by the rules alone.
//! - [`whatif`]: the product's main job. [`whatif::plan`] applies a revoke to a copy of the
//!   state; [`whatif::space::revoke_diff`] computes the exact header space whose verdict
//!   changes, from the rules alone; [`whatif::traffic`] judges traffic before and after by
//!   connection (broken, surviving, restored, unknown) and by service, in bounded memory;
//!   [`whatif::report`] and [`whatif::render`] produce the JSON, terminal and HTML reports;
//!   [`whatif::lint`] finds shadowed, redundant and conflicting rules; with the `fleet`
//!   feature `whatif::sql` runs SQL over Parquet flow logs on Apache DataFusion with each
//!   record's verdict before and after as scalar functions (`sgsim query`), and
//!   `whatif::fold` runs the whole connection what-if as one DataFusion plan, the fold of
//!   each bucket of connections an aggregate (`--fold plan`).
//! - [`classbench`]: the ClassBench filter, trace and first-match formats, read into a
//!   generic state, and a seeded ClassBench-shaped generator.
//! - `serve` (feature `serve`, on by default): `sgsim serve`, the EC2 Query and ECS RPC
//!   APIs over HTTP on localhost (axum/hyper on tokio), revokes through the providers' own
//!   code, describes rendered from the model, the session's what-if report.
//! - `cluster` (feature `cluster`): `sgsim cluster scheduler|executor`, Apache Ballista's
//!   scheduler and executor in process, which run `packet::fleet`'s scans for
//!   `--cluster df://HOST:PORT` (the records come back in file order; the connection
//!   what-if stays with the client), `whatif::fold`'s plans (`--fold plan`: the executors
//!   fold the connections, the client merges a total per bucket) and `whatif::sql`'s
//!   queries, the functions travelling in the plan with their states (sgsim's codecs
//!   around Ballista's).
//! - [`term`]: text bound for a terminal, control characters escaped (account data in
//!   reports, warnings and error messages).
//! - `internal` (hidden, not API): the harnesses the cargo-fuzz targets in `fuzz/` call
//!   (also replayed over every committed corpus file by `cargo test`) and the synthetic
//!   benchmark workloads.
//!
//! ## Guarantees
//!
//! - Every engine agrees with the reference on every packet: the behaviour suite
//!   (`tests/data/suite/`), property tests and fuzz targets check it, as they check that
//!   the header-space difference equals brute-force evaluation.
//! - Parsers turn bad input into typed errors that say where (file, line, field); they never
//!   panic. The library reads no clock and no OS randomness, except the `serve` module
//!   (its log's times and its timeouts).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, clippy::expect_used)]

pub mod classbench;
pub mod classify;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod compile;
mod index;
#[doc(hidden)]
pub mod internal;
pub mod model;
pub mod packet;
pub mod provider;
#[cfg(feature = "serve")]
pub mod serve;
pub mod term;
pub mod track;
pub mod whatif;
