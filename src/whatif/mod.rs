//! Before and after a revoke: the exact header-space difference (from the rules alone) and,
//! with traffic, the packets and flows whose verdict changes.

pub mod lint;
pub mod report;
pub mod space;
