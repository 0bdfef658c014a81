//! Not part of sgsim's API (hidden from its docs, free to change): what the project's own
//! tools need from the library. [`fuzz`] holds the harnesses the cargo-fuzz targets call
//! (and `cargo test` replays over the committed corpus); [`bench`] the synthetic workloads
//! `sgsim bench` and the criterion benches share.

pub mod bench;
pub mod fuzz;
