//! One Parquet file as a table whose rows carry their place: `sgsim_file` (the file's
//! ordinal in its input) and `sgsim_row` (1-based, in file order).
//!
//! [`NumberedFile`] is the table; its scan is [`Numbered`] over DataFusion's Parquet scan
//! of the file, an operator that appends the two columns as the file's batches pass, its
//! input's partitions read one after another (byte ranges in file order), so the numbers
//! are the file's rows whatever the scan's partitioning. Both travel to a Ballista cluster
//! through sgsim's codecs ([`encode_table`], [`encode_exec`]): a window function
//! (`row_number() OVER ()`) would number the rows too, but Ballista's stages run a union of
//! windowed branches under an aggregation more than once (measured: three files counted
//! twice), so the plan numbers rows with an operator of its own.
//!
//! Row groups that the `--since/--until` window leaves unread (their statistics place every
//! row outside it, [`crate::packet::parquet`]) are left out of the scan (a
//! `ParquetAccessPlan` on the file), and the operator numbers the rows read around them;
//! where the scan is not DataFusion's Parquet scan of the file, their rows are read,
//! numbered and dropped. Either way the fold never sees them; the client counts them as the
//! streaming reader does, outside the window. The groups travel with the operator, which
//! puts the access plan back on its input wherever it is rebuilt (a plan's codec does not
//! carry a file's extensions).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result as DfResult;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::StreamExt;

use crate::packet::fleet::skip_row_groups;

/// The column of a row's file ordinal.
pub(super) const FILE: &str = "__sgsim_file";
/// The column of a row's 1-based place in its file.
pub(super) const ROW: &str = "__sgsim_row";

/// The file's schema with the two place columns after its own.
fn numbered_schema(inner: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = inner.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(FILE, DataType::Int64, false));
    fields.push(Field::new(ROW, DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

/// A file's row groups as a window reads them: each one's rows, and whether it is left
/// unread (every row outside the window). Empty where every group is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Unread {
    groups: Arc<[(u64, bool)]>,
}

impl Unread {
    /// The row groups of `rows` rows each, those `outside` left unread.
    pub(super) fn new(rows: &[u64], outside: &[bool]) -> Unread {
        if !outside.iter().any(|&o| o) {
            return Unread::default();
        }
        Unread {
            groups: rows
                .iter()
                .enumerate()
                .map(|(g, &n)| (n, outside.get(g).copied().unwrap_or(false)))
                .collect(),
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Rows left unread.
    pub(super) fn rows(&self) -> u64 {
        self.groups.iter().filter(|g| g.1).map(|g| g.0).sum()
    }

    /// The places (1-based, `first..=last`, ascending and apart) of the rows left unread.
    fn places(&self) -> Vec<(u64, u64)> {
        let (mut ranges, mut start) = (Vec::<(u64, u64)>::new(), 0u64);
        for &(n, outside) in self.groups.iter() {
            if outside && n > 0 {
                match ranges.last_mut() {
                    Some((_, hi)) if *hi == start => *hi = start + n,
                    _ => ranges.push((start + 1, start + n)),
                }
            }
            start += n;
        }
        ranges
    }

    /// Per row group: whether the scan leaves it out.
    fn skip(&self) -> Vec<bool> {
        self.groups.iter().map(|g| g.1).collect()
    }

    /// Its bytes: the number of groups, then each one's rows and whether it is unread.
    fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&(self.groups.len() as u64).to_le_bytes());
        for &(n, outside) in self.groups.iter() {
            buf.extend_from_slice(&n.to_le_bytes());
            buf.push(u8::from(outside));
        }
    }

    /// Reads [`Unread::write`]'s bytes at the start of `buf`: the groups and what follows;
    /// `None` when they are damaged.
    fn read(buf: &[u8]) -> Option<(Unread, &[u8])> {
        let count = u64::from_le_bytes(buf.get(..8)?.try_into().ok()?);
        let len = usize::try_from(count)
            .ok()?
            .checked_mul(9)?
            .checked_add(8)?;
        let body = buf.get(8..len)?;
        let mut groups = Vec::with_capacity(body.len() / 9);
        for g in body.chunks_exact(9) {
            let n = u64::from_le_bytes(g[..8].try_into().ok()?);
            let outside = match g[8] {
                0 => false,
                1 => true,
                _ => return None,
            };
            groups.push((n, outside));
        }
        let (rows, outside): (Vec<u64>, Vec<bool>) = groups.iter().copied().unzip();
        // Places are counted in a `u64`: a file of more rows is no file.
        rows.iter().try_fold(0u64, |sum, &n| sum.checked_add(n))?;
        let unread = Unread::new(&rows, &outside);
        // Groups are carried only when some are unread.
        (unread.groups.len() == groups.len()).then_some((unread, &buf[len..]))
    }
}

/// A Parquet file read with the place of each row.
#[derive(Debug)]
pub(super) struct NumberedFile {
    /// The file as DataFusion lists it (a path or an object URL).
    path: String,
    ordinal: u64,
    unread: Unread,
    inner: Arc<ListingTable>,
    schema: SchemaRef,
}

fn listing(path: &str) -> DfResult<ListingTableConfig> {
    // A local path as a file URL: DataFusion reads `[`, `*`, `?` and `{` in a bare path as
    // a glob, so a file named `a[1].parquet` would list nothing.
    let url = if std::path::Path::new(path).is_absolute() {
        let url = url::Url::from_file_path(path).map_err(|()| {
            DataFusionError::Execution(format!("{path}: not a path a file URL can name"))
        })?;
        ListingTableUrl::try_new(url, None)?
    } else {
        ListingTableUrl::parse(path)?
    };
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension("");
    Ok(ListingTableConfig::new(url).with_listing_options(options))
}

impl NumberedFile {
    /// The file at `path` (absolute, or an object URL whose store the session knows), the
    /// `ordinal`-th of its input, read with `schema` (else the one its footer gives), the
    /// row groups `unread` left out.
    pub(super) async fn open(
        state: &dyn Session,
        path: &str,
        ordinal: u64,
        schema: Option<SchemaRef>,
        unread: Unread,
    ) -> DfResult<NumberedFile> {
        let config = match schema {
            Some(schema) => listing(path)?.with_schema(schema),
            None => listing(path)?.infer_schema(state).await?,
        };
        let inner = Arc::new(ListingTable::try_new(config)?);
        Ok(NumberedFile::with(path, ordinal, unread, inner))
    }

    /// The file's rows as its footer counts them, `None` when the scan does not know (how
    /// many buckets the plan folds in: [`super::buckets_for`]).
    pub(super) async fn rows(&self, state: &dyn Session) -> DfResult<Option<u64>> {
        let scan = self.inner.scan(state, None, &[], None).await?;
        let stats = datafusion::physical_plan::StatisticsContext::new().compute(
            scan.as_ref(),
            &datafusion::physical_plan::StatisticsArgs::new(),
        )?;
        Ok(stats.num_rows.get_value().map(|&n| n as u64))
    }

    fn with(path: &str, ordinal: u64, unread: Unread, inner: Arc<ListingTable>) -> NumberedFile {
        let schema = numbered_schema(&inner.schema());
        NumberedFile {
            path: path.to_string(),
            ordinal,
            unread,
            inner,
            schema,
        }
    }
}

#[async_trait]
impl TableProvider for NumberedFile {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Every row is scanned (a filter or limit would change the numbering); the file's
        // own columns that are asked for, then the place columns.
        let own = self.schema.fields().len() - 2;
        let wanted: Vec<usize> = match projection {
            Some(p) => p.iter().copied().filter(|&c| c < own).collect(),
            None => (0..own).collect(),
        };
        let scan = self.inner.scan(state, Some(&wanted), &[], None).await?;
        let numbered: Arc<dyn ExecutionPlan> =
            Arc::new(Numbered::new(scan, self.ordinal, self.unread.clone()));
        let Some(projection) = projection else {
            return Ok(numbered);
        };
        // Reorder to the projection asked for: the numbered plan has the wanted columns in
        // order, then the place columns.
        let at = projection.iter().map(|&c| {
            if c < own {
                wanted.iter().position(|&w| w == c).unwrap_or(0)
            } else {
                wanted.len() + (c - own)
            }
        });
        projected(numbered, at)
    }
}

/// `plan`'s columns at `at`, in that order.
pub(super) fn projected(
    plan: Arc<dyn ExecutionPlan>,
    at: impl Iterator<Item = usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = plan.schema();
    let exprs = at
        .map(|c| {
            let name = schema.field(c).name().clone();
            let col: Arc<dyn datafusion::physical_expr::PhysicalExpr> = Arc::new(
                datafusion::physical_expr::expressions::Column::new(&name, c),
            );
            (col, name)
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

/// The operator: its input's batches, partition after partition, with the place columns,
/// the row groups `unread` left out.
#[derive(Debug)]
pub(super) struct Numbered {
    input: Arc<dyn ExecutionPlan>,
    ordinal: u64,
    unread: Unread,
    /// The places of the rows left unread.
    places: Arc<[(u64, u64)]>,
    /// The input's scan leaves them out (else it reads them, and they are dropped here).
    skipping: bool,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

/// Which rows of a batch whose first row is the place `first` (of `n`) are kept, `None`
/// when all are: the places outside `dropped`'s ranges.
fn kept(dropped: &[(u64, u64)], first: u64, n: u64) -> Option<BooleanArray> {
    let last = first + n;
    let meets = |&&(lo, hi): &&(u64, u64)| lo < last && hi >= first;
    dropped.iter().find(meets)?;
    Some(BooleanArray::from_iter((first..last).map(|place| {
        Some(!dropped.iter().any(|&(lo, hi)| (lo..=hi).contains(&place)))
    })))
}

/// The places of `n` rows read, the next one at or after `next`, around the ranges of
/// `dropped` from `at` on (both moved on past them).
fn places_around(dropped: &[(u64, u64)], next: &mut u64, at: &mut usize, n: usize) -> UInt64Array {
    UInt64Array::from_iter_values((0..n).map(|_| {
        while let Some(&(lo, hi)) = dropped.get(*at) {
            if *next > hi {
                *at += 1;
            } else {
                if *next >= lo {
                    *next = hi + 1;
                    *at += 1;
                }
                break;
            }
        }
        let place = *next;
        *next += 1;
        place
    }))
}

impl Numbered {
    /// Numbers the rows of `input` (one file's scan), the `ordinal`-th file, and leaves out
    /// the row groups `unread` leaves out (by its scan where it can).
    pub(super) fn new(input: Arc<dyn ExecutionPlan>, ordinal: u64, unread: Unread) -> Numbered {
        let (input, skipping) = match skip_row_groups(&input, &unread.skip()) {
            Ok(Some(skips)) => (skips, true),
            _ => (input, false),
        };
        let schema = numbered_schema(&input.schema());
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Numbered {
            input,
            ordinal,
            places: unread.places().into(),
            unread,
            skipping,
            schema,
            properties,
        }
    }
}

impl DisplayAs for Numbered {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Numbered: file={}", self.ordinal)?;
        if !self.places.is_empty() {
            let how = if self.skipping { "skipped" } else { "dropped" };
            write!(f, ", unread={:?} ({how})", self.places)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for Numbered {
    fn name(&self) -> &str {
        "Numbered"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match <[_; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(Numbered::new(
                input,
                self.ordinal,
                self.unread.clone(),
            ))),
            Err(_) => Err(DataFusionError::Internal("Numbered takes one input".into())),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "Numbered has one partition, not {partition}"
            )));
        }
        let input = self.input.clone();
        let parts = input.output_partitioning().partition_count();
        let schema = self.schema.clone();
        let ordinal = self.ordinal as i64;
        // The input's partitions in order, each opened when the one before it ends.
        let batches = futures::stream::iter(0..parts)
            .map(move |p| match input.execute(p, context.clone()) {
                Ok(s) => s.boxed(),
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
            })
            .flatten();
        let (mut next, mut at) = (1u64, 0usize);
        let out = schema.clone();
        let (places, skipping) = (self.places.clone(), self.skipping);
        let numbered = batches.map(move |batch| {
            let batch = batch?;
            let n = batch.num_rows() as u64;
            let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
            columns.push(Arc::new(Int64Array::from_value(ordinal, n as usize)));
            let keep = if skipping {
                columns.push(Arc::new(places_around(
                    &places, &mut next, &mut at, n as usize,
                )));
                None
            } else {
                columns.push(Arc::new(UInt64Array::from_iter_values(next..next + n)));
                let keep = kept(&places, next, n);
                next += n;
                keep
            };
            let batch = RecordBatch::try_new(out.clone(), columns)?;
            match keep {
                None => Ok(batch),
                Some(keep) => Ok(datafusion::arrow::compute::filter_record_batch(
                    &batch, &keep,
                )?),
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, numbered)))
    }
}

const WIRE_TABLE: &[u8] = b"sgsim-numbered-file/2\n";
const WIRE_EXEC: &[u8] = b"sgsim-numbered/2\n";

/// Writes what a logical plan carries of a [`NumberedFile`]: its ordinal, the row groups it
/// leaves unread and its path (the schema travels beside it). `false`: not one.
pub(super) fn encode_table(table: &dyn TableProvider, buf: &mut Vec<u8>) -> bool {
    let any: &dyn Any = table;
    let Some(t) = any.downcast_ref::<NumberedFile>() else {
        return false;
    };
    buf.extend_from_slice(WIRE_TABLE);
    buf.extend_from_slice(&t.ordinal.to_le_bytes());
    t.unread.write(buf);
    buf.extend_from_slice(t.path.as_bytes());
    true
}

/// Rebuilds a [`NumberedFile`] of `schema` (the numbered one) from [`encode_table`]'s
/// bytes; `Ok(None)`: not ours.
pub(super) fn decode_table(
    buf: &[u8],
    schema: &Schema,
) -> DfResult<Option<Arc<dyn TableProvider>>> {
    let Some(rest) = buf.strip_prefix(WIRE_TABLE) else {
        return Ok(None);
    };
    let bad = || DataFusionError::Execution("a numbered file's definition is damaged".into());
    if rest.len() < 8 || schema.fields().len() < 2 {
        return Err(bad());
    }
    let (ordinal, rest) = rest.split_at(8);
    let ordinal = u64::from_le_bytes(ordinal.try_into().map_err(|_| bad())?);
    let (unread, path) = Unread::read(rest).ok_or_else(bad)?;
    let path = std::str::from_utf8(path).map_err(|_| bad())?;
    let own = schema.fields().len() - 2;
    let inner = Arc::new(Schema::new(
        schema.fields()[..own]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect::<Vec<_>>(),
    ));
    let config = listing(path)?.with_schema(inner);
    let table = Arc::new(ListingTable::try_new(config)?);
    Ok(Some(Arc::new(NumberedFile::with(
        path, ordinal, unread, table,
    ))))
}

/// Writes what a physical plan carries of a [`Numbered`] (its ordinal and the row groups it
/// leaves unread; its input travels as its child, and gets the access plan back from
/// [`Numbered::new`]). `false`: not one.
pub(super) fn encode_exec(plan: &dyn ExecutionPlan, buf: &mut Vec<u8>) -> bool {
    let any: &dyn Any = plan;
    let Some(n) = any.downcast_ref::<Numbered>() else {
        return false;
    };
    buf.extend_from_slice(WIRE_EXEC);
    buf.extend_from_slice(&n.ordinal.to_le_bytes());
    n.unread.write(buf);
    true
}

/// Rebuilds a [`Numbered`] over `inputs` from [`encode_exec`]'s bytes; `Ok(None)`: not
/// ours.
pub(super) fn decode_exec(
    buf: &[u8],
    inputs: &[Arc<dyn ExecutionPlan>],
) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some(rest) = buf.strip_prefix(WIRE_EXEC) else {
        return Ok(None);
    };
    let damaged = || DataFusionError::Execution("a numbered scan's definition is damaged".into());
    let ordinal = rest.get(..8).and_then(|o| <[u8; 8]>::try_from(o).ok());
    let unread = rest.get(8..).and_then(Unread::read);
    let (Some(ordinal), Some((unread, [])), [input]) = (ordinal, unread, inputs) else {
        return Err(damaged());
    };
    Ok(Some(Arc::new(Numbered::new(
        input.clone(),
        u64::from_le_bytes(ordinal),
        unread,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Damaged definitions are errors, never a panic; others' bytes are left alone.
    #[test]
    fn damaged_definitions_are_errors() {
        let schema = numbered_schema(&Schema::new(vec![Field::new(
            "srcaddr",
            DataType::Utf8,
            true,
        )]));
        assert!(decode_table(b"other", &schema).unwrap().is_none());
        for bad in [WIRE_TABLE, &[WIRE_TABLE, &[1, 2, 3][..]].concat()] {
            assert!(decode_table(bad, &schema).is_err());
        }
        let mut not_utf8 = WIRE_TABLE.to_vec();
        not_utf8.extend_from_slice(&7u64.to_le_bytes());
        Unread::default().write(&mut not_utf8);
        not_utf8.extend_from_slice(&[0xff, 0xfe]);
        assert!(decode_table(&not_utf8, &schema).is_err());
        // Groups cut, with a flag that is no flag, carried with none unread, or of more
        // rows than a place can number.
        let mut huge = Vec::new();
        Unread::new(&[u64::MAX, 2], &[true, false]).write(&mut huge);
        assert!(Unread::read(&huge).is_none());
        let unread = Unread::new(&[10, 10, 5], &[true, false, true]);
        let mut groups = Vec::new();
        unread.write(&mut groups);
        let mut flag = groups.clone();
        flag[8 + 8] = 2;
        let mut none = Vec::new();
        Unread {
            groups: vec![(10, false)].into(),
        }
        .write(&mut none);
        for body in [
            &groups[..groups.len() - 1],
            &flag,
            &none,
            &u64::MAX.to_le_bytes(),
        ] {
            let mut bad = WIRE_TABLE.to_vec();
            bad.extend_from_slice(&7u64.to_le_bytes());
            bad.extend_from_slice(body);
            if body.len() != groups.len() - 1 {
                bad.extend_from_slice(b"/tmp/a.parquet");
            }
            assert!(decode_table(&bad, &schema).is_err(), "{body:?}");
        }
        assert!(decode_exec(b"other", &[]).unwrap().is_none());
        let mut exec = WIRE_EXEC.to_vec();
        exec.extend_from_slice(&7u64.to_le_bytes());
        unread.write(&mut exec);
        // No input, a cut ordinal, cut groups, or bytes after them.
        assert!(decode_exec(&exec, &[]).is_err());
        for cut in [WIRE_EXEC.len() + 4, exec.len() - 1] {
            assert!(decode_exec(&exec[..cut], &[]).is_err());
        }
        let mut long = exec.clone();
        long.push(0);
        assert!(decode_exec(&long, &[]).is_err());
    }

    /// The row groups left unread travel, give the places of their rows, and the operator
    /// numbers the rows read around them or drops them.
    #[test]
    fn unread_row_groups_travel_and_are_left_out() {
        let unread = Unread::new(
            &[10, 10, 0, 5, 3, 7],
            &[true, false, true, true, true, false],
        );
        let mut buf = Vec::new();
        unread.write(&mut buf);
        buf.extend_from_slice(b"rest");
        let (back, rest) = Unread::read(&buf).unwrap();
        assert_eq!((&back, rest), (&unread, &b"rest"[..]));
        assert_eq!(unread.rows(), 18);
        // Groups 3 and 4 are one range (the empty group 2 between them and 1 has no rows).
        let places = unread.places();
        assert_eq!(places, [(1, 10), (21, 28)]);
        assert!(Unread::new(&[4, 4], &[false, false]).is_empty());
        assert_eq!(unread.skip(), [true, false, true, true, true, false]);
        // Dropping: a batch of places 9 to 22 keeps 11 to 20.
        let keep = kept(&places, 9, 14).unwrap();
        let kept_places: Vec<u64> = (9..23).filter(|p| keep.value((p - 9) as usize)).collect();
        assert_eq!(kept_places, (11..=20).collect::<Vec<_>>());
        assert!(kept(&places, 11, 10).is_none());
        assert!(kept(&places, 29, 100).is_none());
        // Skipping: the 17 rows read are places 11 to 20 and 29 to 35, in batches of any
        // size.
        for size in [1, 3, 17] {
            let (mut next, mut at, mut got) = (1u64, 0usize, Vec::new());
            let mut left = 17;
            while left > 0 {
                let n = size.min(left);
                got.extend(
                    places_around(&places, &mut next, &mut at, n)
                        .values()
                        .iter()
                        .copied(),
                );
                left -= n;
            }
            let expected: Vec<u64> = (11..=20).chain(29..=35).collect();
            assert_eq!(got, expected, "batches of {size}");
        }
    }

    /// A local path with glob characters is a file URL, not a pattern.
    #[test]
    fn paths_with_glob_characters_name_one_file() {
        let config = listing("/tmp/logs[2026]/a*.parquet").unwrap();
        let url = &config.table_paths[0];
        // Parsed as a pattern, the prefix would stop at `/tmp`.
        let prefix: &str = url.prefix().as_ref();
        assert!(prefix.ends_with("a*.parquet"), "{prefix}");
        assert!(!url.is_collection());
        let glob = ListingTableUrl::parse("/tmp/logs[2026]/a*.parquet").unwrap();
        let prefix: &str = glob.prefix().as_ref();
        assert!(!prefix.ends_with(".parquet"), "{prefix}");
    }
}
