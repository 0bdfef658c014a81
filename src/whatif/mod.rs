//! Before and after a revoke: the exact header-space difference (from the rules alone), the
//! packets and flows whose verdict changes on real or synthetic traffic, and lint.
//!
//! [`plan`] applies the revoke with the provider's exact semantics to a copy of the state.
//! If the API would reject the request, the report is that error response and nothing else.
//! Otherwise it names the revoked rules, computes the [`space::revoke_diff`] and the
//! stateful caveats; [`traffic::Run`] adds what the traffic shows, by connection and by
//! service (the whole loop: the binary only adds progress bars and rendering). With the
//! `fleet` feature, `sql` puts the verdicts before and after into Apache DataFusion as
//! scalar functions over flow-log columns, and `fold` runs the traffic what-if as one
//! DataFusion plan whose aggregate folds each bucket of connections through a
//! [`traffic::Run`] (on every core, or on a Ballista cluster's executors).

mod dd;
#[cfg(feature = "fleet")]
pub mod fold;
pub mod lint;
pub mod render;
pub mod report;
pub mod space;
#[cfg(feature = "fleet")]
pub mod sql;
pub mod traffic;

use crate::compile::CompileError;
use crate::model::State;
use crate::provider::{self, Outcome, RawRequest, RequestError};

/// Why a what-if could not be computed at all (as opposed to an API error, which is a
/// report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is not a request.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The state cannot be compiled.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The header space cannot be computed.
    #[error(transparent)]
    Space(#[from] space::Error),
}

/// A revoke applied to a copy of the state, and the report of what it changes.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What the provider answered (its `state` is the state after the revoke).
    pub outcome: Outcome,
    /// The report so far (traffic sections empty).
    pub report: report::Report,
}

/// Applies `request` to a copy of `before` and reports what changes from the rules alone.
pub fn plan(before: &State, request: &RawRequest) -> Result<Plan, Error> {
    let outcome = provider::revoke(before, request)?;
    let diff = if outcome.error.is_none() && !outcome.revoked.is_empty() {
        let removed: Vec<_> = outcome.revoked.iter().map(|r| r.id.clone()).collect();
        space::revoke_diff(before, &removed)?
    } else {
        space::Diff {
            regions: Vec::new(),
            complete: true,
            stopped: None,
        }
    };
    let mut report = report::skeleton(before, &outcome, diff.regions, provider::rule_json);
    report.header_space_complete = diff.complete;
    report.header_space_stopped = diff.stopped;
    Ok(Plan { outcome, report })
}
