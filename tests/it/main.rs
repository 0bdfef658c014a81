//! The integration suite: one test binary for every data-driven suite.

mod aws;
