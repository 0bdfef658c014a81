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

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, UInt64Array};
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

/// A Parquet file read with the place of each row.
#[derive(Debug)]
pub(super) struct NumberedFile {
    /// The file as DataFusion lists it (a path or an object URL).
    path: String,
    ordinal: u64,
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
    /// `ordinal`-th of its input, read with `schema` (else the one its footer gives).
    pub(super) async fn open(
        state: &dyn Session,
        path: &str,
        ordinal: u64,
        schema: Option<SchemaRef>,
    ) -> DfResult<NumberedFile> {
        let config = match schema {
            Some(schema) => listing(path)?.with_schema(schema),
            None => listing(path)?.infer_schema(state).await?,
        };
        let inner = Arc::new(ListingTable::try_new(config)?);
        Ok(NumberedFile::with(path, ordinal, inner))
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

    fn with(path: &str, ordinal: u64, inner: Arc<ListingTable>) -> NumberedFile {
        let schema = numbered_schema(&inner.schema());
        NumberedFile {
            path: path.to_string(),
            ordinal,
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
        let numbered: Arc<dyn ExecutionPlan> = Arc::new(Numbered::new(scan, self.ordinal));
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

/// The operator: its input's batches, partition after partition, with the place columns.
#[derive(Debug)]
pub(super) struct Numbered {
    input: Arc<dyn ExecutionPlan>,
    ordinal: u64,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl Numbered {
    /// Numbers the rows of `input` (one file's scan), the `ordinal`-th file.
    pub(super) fn new(input: Arc<dyn ExecutionPlan>, ordinal: u64) -> Numbered {
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
            schema,
            properties,
        }
    }
}

impl DisplayAs for Numbered {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Numbered: file={}", self.ordinal)
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
            Ok([input]) => Ok(Arc::new(Numbered::new(input, self.ordinal))),
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
        let mut next = 1u64;
        let out = schema.clone();
        let numbered = batches.map(move |batch| {
            let batch = batch?;
            let n = batch.num_rows() as u64;
            let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
            columns.push(Arc::new(Int64Array::from_value(ordinal, n as usize)));
            columns.push(Arc::new(UInt64Array::from_iter_values(next..next + n)));
            next += n;
            Ok(RecordBatch::try_new(out.clone(), columns)?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, numbered)))
    }
}

const WIRE_TABLE: &[u8] = b"sgsim-numbered-file/1\n";
const WIRE_EXEC: &[u8] = b"sgsim-numbered/1\n";

/// Writes what a logical plan carries of a [`NumberedFile`]: its ordinal and path (the
/// schema travels beside it). `false`: not one.
pub(super) fn encode_table(table: &dyn TableProvider, buf: &mut Vec<u8>) -> bool {
    let any: &dyn Any = table;
    let Some(t) = any.downcast_ref::<NumberedFile>() else {
        return false;
    };
    buf.extend_from_slice(WIRE_TABLE);
    buf.extend_from_slice(&t.ordinal.to_le_bytes());
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
    let (ordinal, path) = rest.split_at(8);
    let ordinal = u64::from_le_bytes(ordinal.try_into().map_err(|_| bad())?);
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
    Ok(Some(Arc::new(NumberedFile::with(path, ordinal, table))))
}

/// Writes what a physical plan carries of a [`Numbered`] (its ordinal; its input travels
/// as its child). `false`: not one.
pub(super) fn encode_exec(plan: &dyn ExecutionPlan, buf: &mut Vec<u8>) -> bool {
    let any: &dyn Any = plan;
    let Some(n) = any.downcast_ref::<Numbered>() else {
        return false;
    };
    buf.extend_from_slice(WIRE_EXEC);
    buf.extend_from_slice(&n.ordinal.to_le_bytes());
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
    let (Ok(ordinal), [input]) = (<[u8; 8]>::try_from(rest), inputs) else {
        return Err(DataFusionError::Execution(
            "a numbered scan's definition is damaged".into(),
        ));
    };
    Ok(Some(Arc::new(Numbered::new(
        input.clone(),
        u64::from_le_bytes(ordinal),
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
        not_utf8.extend_from_slice(&[0xff, 0xfe]);
        assert!(decode_table(&not_utf8, &schema).is_err());
        assert!(decode_exec(b"other", &[]).unwrap().is_none());
        let mut exec = WIRE_EXEC.to_vec();
        exec.extend_from_slice(&7u64.to_le_bytes());
        // No input, or a cut ordinal.
        assert!(decode_exec(&exec, &[]).is_err());
        assert!(decode_exec(&exec[..exec.len() - 1], &[]).is_err());
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
