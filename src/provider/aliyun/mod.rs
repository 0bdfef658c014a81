//! Alibaba Cloud ECS: export import, `RevokeSecurityGroup` / `RevokeSecurityGroupEgress`
//! requests, their semantics, and the responses the RPC API returns.
//!
//! The pipeline, one private module per stage, named as AWS's are:
//!
//! - `import`: `DescribeSecurityGroupAttribute`, `DescribeSecurityGroups`,
//!   `DescribeNetworkInterfaces`, `DescribePrefixLists` and `DescribePrefixListAttributes`
//!   output → [`State`].
//! - `request`: the request text (RPC query string or URL exactly as the SDKs send it, or
//!   JSON) → one request holding the three request forms as given.
//! - `revoke`: SEMANTICS.md §2.1 — validation in the order of §2.1.3, one function a
//!   step, every error of the seeds' tables (`errors`, listed in [`ERRORS`]), defaults
//!   filled before matching, matching, deletion, and ClientToken idempotency kept in
//!   [`State::provider_state`] (under [`TOKENS_KEY`]).
//! - `response`: the JSON and XML bodies.
//! - `values`: the value syntax exports and requests share (protocol names, port ranges).
//!
//! What is not simulated: rule IDs of other accounts, port lists' contents (a rule using a
//! port list is taken to cover every port), and `Format=XML` in the request (both bodies are
//! always produced; the caller picks one).
//!
//! Decision where the documents say nothing: a parameter given twice, a key given twice in
//! a JSON object (the request's, or one of a `Permissions` list), is rejected first of all
//! with `InvalidParameter` (400) naming it, whichever parameter it is, as AWS rejects a
//! repeated parameter.

mod errors;
mod import;
mod request;
pub(crate) mod response;
mod revoke;
mod values;

pub use errors::{Code, ALL as ERRORS};
pub use revoke::{PREFIX_LISTS_ENABLED_KEY, STRICT_NOT_FOUND_KEY, TOKENS_KEY};
#[cfg(feature = "serve")]
pub(crate) use values::Nic;

use super::{ImportError, Imported, Outcome, RawRequest, RequestError};
use crate::model::State;

/// Whether a JSON document is one of this provider's exports (or a list of them).
pub fn recognises(value: &serde_json::Value) -> bool {
    import::recognises(value)
}

/// Imports this provider's export documents (`(file name, JSON)`), merged into one state.
pub fn import(docs: &[(String, serde_json::Value)]) -> Result<Imported, ImportError> {
    import::import(docs)
}

/// Applies a `RevokeSecurityGroup` / `RevokeSecurityGroupEgress` request as ECS would.
///
/// Fails only for text that is not such a request; every answer the API would give,
/// errors included, is an [`Outcome`].
pub fn revoke(state: &State, request: &RawRequest) -> Result<Outcome, RequestError> {
    revoke::revoke(state, request, None)
}

/// [`revoke()`] answering with `request_id` instead of the ID derived from the request's
/// text (deterministic, what `sgsim revoke` prints; a ClientToken replay repeats the first
/// answer's). `sgsim serve` gives every answer its own, as ECS does.
pub fn revoke_with_id(
    state: &State,
    request: &RawRequest,
    request_id: &str,
) -> Result<Outcome, RequestError> {
    revoke::revoke(state, request, Some(request_id))
}
