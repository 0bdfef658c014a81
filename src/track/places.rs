//! [`Places`]: what an evaluator knows of a state before it judges anything, built once.

use std::net::IpAddr;

use super::judge::icmp_classes;
use super::untracked::{eni_infos, EniInfo};
use super::Map;
use crate::classify::SemanticsError;
use crate::compile::Table;
use crate::model::{EniId, State};

/// What an evaluator knows of a state before it judges anything: each ENI's tracking
/// (provider, untracked rules), addresses and IDs to ENIs, the ICMP classes. Built once and
/// shared ([`Evaluator::with_places`]) by evaluators that judge many small batches of one
/// state, such as SQL functions (building it costs a pass over every ENI and rule).
pub struct Places {
    pub(super) enis: Vec<EniInfo>,
    /// Address → ENI index: the same mapping as [`Table::eni_of`], as hash maps.
    pub(super) v4: Map<u32, u32>,
    pub(super) v6: Map<u128, u32>,
    /// ENI ID → ENI index, for flow-log records that name their interface.
    pub(super) eni_ids: Map<EniId, u32>,
    /// One (type, code) per class of ICMP types and codes the rules tell apart.
    pub(super) icmp_types: Vec<(u16, u16)>,
    /// Rules of the table.
    pub(super) rules: usize,
}

impl Places {
    /// The places of `state`, located with `table` (compiled from it).
    pub fn new(table: &Table, state: &State) -> Result<Places, SemanticsError> {
        let mut v4 = Map::default();
        let mut v6 = Map::default();
        for (i, eni) in state.enis.iter().enumerate().take(table.enis().len()) {
            for &a in eni.ips.iter().chain(&eni.public_ips) {
                match crate::model::normalize_addr(a) {
                    IpAddr::V4(a) => v4.insert(u32::from(a), i as u32),
                    IpAddr::V6(a) => v6.insert(u128::from(a), i as u32),
                };
            }
        }
        Ok(Places {
            enis: eni_infos(state)?,
            v4,
            v6,
            eni_ids: table
                .enis()
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i as u32))
                .collect(),
            icmp_types: icmp_classes(state),
            rules: table.rules().len(),
        })
    }
}
