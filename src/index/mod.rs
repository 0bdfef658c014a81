//! Lookup structures over five-field boxes, each with its builder beside its layout: the
//! model's rules, lowered by [`crate::compile`] to ranked boxes ([`boxes`]), are indexed by
//! decision trees ([`tree`], built by `tree::build`) or cross-product tables ([`rfc`],
//! built by `rfc::build`). A lookup returns the smallest rank whose box holds a key and
//! that a caller-supplied test accepts (a live rule; for a group peer, a member address).
//!
//! This stage knows nothing of providers, groups or packets: it imports only the model's
//! word types through [`boxes`].

pub(crate) mod boxes;
pub(crate) mod rfc;
pub(crate) mod tree;
