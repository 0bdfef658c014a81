//! PLACEHOLDER: replaced by the aws provider implementation before landing.

use super::{ImportError, Imported, Outcome, RawRequest, RequestError};
use crate::model::State;

/// Whether a JSON document is one of this provider's exports.
pub fn recognises(_value: &serde_json::Value) -> bool {
    false
}

/// Imports this provider's export documents.
pub fn import(_docs: &[(String, serde_json::Value)]) -> Result<Imported, ImportError> {
    Ok(Imported::default())
}

/// Applies a revoke request.
pub fn revoke(_state: &State, _request: &RawRequest) -> Result<Outcome, RequestError> {
    Err(RequestError::NotARequest)
}
