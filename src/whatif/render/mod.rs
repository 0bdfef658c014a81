//! Renders a what-if [`Report`] for people: a terminal report (optionally coloured) and a
//! self-contained HTML page with tables and SVG charts.
//!
//! # Files
//!
//! - `mod.rs`: re-exports the two entry points, [`text`] and [`html`].
//! - `cells.rs`: what both say: table cells, labels for ENIs, groups, clients, addresses and
//!   ports, and the sentences a report opens with.
//! - `text.rs`: the terminal report: colours and padded tables.
//! - `html.rs`: the HTML page: tables, SVG charts and its style sheet.
//!
//! [`Report`]: crate::whatif::report::Report

mod cells;
mod html;
mod text;

pub use html::html;
pub use text::text;
