//! Text columns read as dictionaries: each entry of an address or interface column is
//! read once per column chunk, not once per row.

use std::sync::Arc;

use arrow_array::Array;
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use super::guarded;
use crate::packet::flowlog::Field;

/// What a dictionary entry reads as, worked out once for all the rows that point at it.
#[derive(Clone, Debug)]
pub(super) enum Pre {
    /// A null entry.
    Null,
    /// Read as text by the record (other fields, absent values, or text that is no
    /// address: the record's own reading names the problem, exactly as for a column that
    /// is not a dictionary).
    Text,
    Addr(std::net::IpAddr),
    Eni(crate::model::EniId),
}

impl Pre {
    fn of(field: Field, text: &str) -> Pre {
        match (field, text) {
            (_, "-" | "") => Pre::Text,
            (Field::SrcAddr | Field::DstAddr | Field::PktSrcAddr | Field::PktDstAddr, t) => {
                t.parse().map_or(Pre::Text, Pre::Addr)
            }
            (Field::InterfaceId | Field::EniId, t) => Pre::Eni(crate::model::EniId::from(t)),
            _ => Pre::Text,
        }
    }
}

/// The entries read ahead for the last dictionary of each field. The batches of a column
/// chunk share its dictionary (the same buffers), so an entry is read once per chunk, not
/// once per row; the buffers are held here, so an address that matches cannot belong to
/// another dictionary.
#[derive(Default)]
pub(crate) struct Dicts {
    last: Vec<Option<(arrow_array::StringArray, Arc<[Pre]>)>>,
}

impl Dicts {
    pub(super) fn entries(
        &mut self,
        field: Field,
        values: &arrow_array::StringArray,
    ) -> Arc<[Pre]> {
        let slot = field as usize;
        if self.last.len() <= slot {
            self.last.resize(Field::ALL.len(), None);
        }
        let same = |a: &arrow_array::StringArray| {
            a.len() == values.len()
                && a.values().as_ptr() == values.values().as_ptr()
                && a.offsets().inner().inner().as_ptr() == values.offsets().inner().inner().as_ptr()
        };
        match &self.last[slot] {
            Some((a, pre)) if same(a) => pre.clone(),
            _ => {
                let pre: Arc<[Pre]> = (0..values.len())
                    .map(|k| {
                        if values.is_null(k) {
                            Pre::Null
                        } else {
                            Pre::of(field, values.value(k))
                        }
                    })
                    .collect();
                self.last[slot] = Some((values.clone(), pre.clone()));
                pre
            }
        }
    }
}

/// The file read with its text columns among `wanted` kept as dictionaries: flow-log text
/// (interfaces, addresses, actions) repeats, writers dictionary-encode it, and each entry
/// is then read once per column chunk ([`Dicts`]) instead of once per row. A chunk whose
/// pages are not dictionary-encoded is made a dictionary per batch by the decoder. Should
/// the decoder refuse the hint, the file is read as it is.
pub(super) fn dictionary_hint(meta: ArrowReaderMetadata, wanted: &[usize]) -> ArrowReaderMetadata {
    let schema = meta.schema();
    if !wanted
        .iter()
        .any(|&c| schema.field(c).data_type() == &DataType::Utf8)
    {
        return meta;
    }
    let fields: Vec<arrow_schema::FieldRef> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(c, f)| {
            if f.data_type() == &DataType::Utf8 && wanted.binary_search(&c).is_ok() {
                let dict =
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                Arc::new(f.as_ref().clone().with_data_type(dict))
            } else {
                f.clone()
            }
        })
        .collect();
    let hint = Arc::new(arrow_schema::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ));
    let options = ArrowReaderOptions::new().with_schema(hint);
    match guarded(|| ArrowReaderMetadata::try_new(meta.metadata().clone(), options)) {
        Ok(Ok(hinted)) => hinted,
        _ => meta,
    }
}
