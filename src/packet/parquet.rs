//! AWS VPC Flow Logs delivered as Parquet (Athena's columns for versions 2 to 10).
//!
//! Columns are found by name, in either spelling (`interface_id` as AWS's Parquet files
//! and Athena's DDL name them, or `interface-id`); each may be text or any integer type,
//! and `"-"`, an empty string or null means absent. Unknown columns are not read (the
//! projection holds only the fields sgsim uses). A schema that names a field twice is
//! rejected, as is a file without a `srcaddr` / `pkt-srcaddr` column (not a flow log).
//!
//! The file is read one row group at a time in batches of [`BATCH`] rows, so memory
//! follows the batch, not the file. A row that cannot be used is counted like a malformed
//! text line, its message naming the row group and row; a row group that cannot be
//! decoded (corrupt pages, an unsupported column type) is counted row by row under
//! `unreadable Parquet row group` with one message naming it, and reading goes on with
//! the next row group. Every compression the `parquet` crate is built with here is read:
//! uncompressed, Snappy, gzip, LZ4 and ZSTD.
//!
//! The `parquet` crate has panicked on crafted files before: opening a file and decoding
//! each batch run under `catch_unwind`, and a panic there is counted like any other
//! unreadable row group (or refuses the file, when it happens on the footer).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::file::reader::ChunkReader;

use super::flowlog::{self, canonical, Field, Fields, FlowError, Format, Layout, Outcome, Val};
use super::Summary;

/// Rows decoded at a time.
pub const BATCH: usize = 8192;

/// The magic bytes a Parquet file starts (and ends) with.
pub const MAGIC: &[u8; 4] = b"PAR1";

type Open = dyn FnMut(usize) -> Result<ParquetRecordBatchReader, String> + Send;

/// Reads flow-log records from a Parquet file, a row group at a time.
pub struct Reader {
    open: Box<Open>,
    /// Rows of each row group.
    groups: Vec<u64>,
    group: usize,
    current: Option<ParquetRecordBatchReader>,
    /// Records of the last batch not handed out yet.
    pending: std::collections::VecDeque<Result<flowlog::Record, FlowError>>,
    /// Rows handed out of the current row group so far.
    group_rows: u64,
    /// First row (0-based) of the current row group.
    group_start: u64,
    index: u64,
    strict: bool,
    summary: Summary,
    consumed: u64,
    len: u64,
    done: bool,
}

/// A column of a batch, typed once.
enum Col<'a> {
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    Int(&'a dyn Array, fn(&dyn Array, usize) -> i64),
}

fn int<T: arrow_array::types::ArrowPrimitiveType>(a: &dyn Array, i: usize) -> i64
where
    T::Native: TryInto<i64>,
{
    // Only u64 values above i64::MAX fail; they are out of range for every field anyway.
    a.as_primitive::<T>()
        .value(i)
        .try_into()
        .unwrap_or(i64::MAX)
}

impl<'a> Col<'a> {
    fn new(a: &'a ArrayRef) -> Result<Col<'a>, String> {
        let arr: &dyn Array = a.as_ref();
        Ok(match a.data_type() {
            DataType::Utf8 => Col::Utf8(a.as_string::<i32>()),
            DataType::LargeUtf8 => Col::LargeUtf8(a.as_string::<i64>()),
            DataType::Utf8View => Col::View(a.as_string_view()),
            DataType::Int8 => Col::Int(arr, int::<Int8Type>),
            DataType::Int16 => Col::Int(arr, int::<Int16Type>),
            DataType::Int32 => Col::Int(arr, int::<Int32Type>),
            DataType::Int64 => Col::Int(arr, int::<Int64Type>),
            DataType::UInt8 => Col::Int(arr, int::<UInt8Type>),
            DataType::UInt16 => Col::Int(arr, int::<UInt16Type>),
            DataType::UInt32 => Col::Int(arr, int::<UInt32Type>),
            DataType::UInt64 => Col::Int(arr, int::<UInt64Type>),
            other => return Err(format!("has type {other}, not text or an integer")),
        })
    }

    fn get(&self, i: usize) -> Option<Val<'a>> {
        let text = |s: &'a str| match s {
            "-" | "" => None,
            s => Some(Val::Str(std::borrow::Cow::Borrowed(s))),
        };
        match self {
            Col::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)).and_then(text),
            Col::LargeUtf8(a) => (!a.is_null(i)).then(|| a.value(i)).and_then(text),
            Col::View(a) => (!a.is_null(i)).then(|| a.value(i)).and_then(text),
            Col::Int(a, f) => (!a.is_null(i)).then(|| Val::Int(f(*a, i))),
        }
    }
}

/// One row of a batch, its fields by name.
struct Row<'c, 'a> {
    cols: &'c [Option<Col<'a>>],
    i: usize,
}

impl Fields for Row<'_, '_> {
    fn get(&self, field: Field) -> Option<Val<'_>> {
        self.cols[field as usize].as_ref()?.get(self.i)
    }
}

/// The batch's columns by field.
fn columns<'a>(batch: &'a RecordBatch) -> Result<Vec<Option<Col<'a>>>, String> {
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| canonical(f.name()))
        .collect();
    let layout = Layout::new(&names)?;
    layout
        .slots
        .iter()
        .enumerate()
        .map(|(f, slot)| match slot {
            None => Ok(None),
            Some(c) => Col::new(batch.column(*c))
                .map(Some)
                .map_err(|why| format!("column {} {why}", flowlog::Field::ALL[f].name())),
        })
        .collect()
}

impl Reader {
    /// Opens a Parquet flow log; `input` gives a fresh handle on the same bytes for each
    /// row group (a file's `try_clone`, a cheap clone of bytes or of an object reader).
    pub fn new<T, F>(mut input: F, len: u64) -> Result<Reader, FlowError>
    where
        T: ChunkReader + 'static,
        F: FnMut() -> std::io::Result<T> + Send + 'static,
    {
        let head = FlowError::File;
        let first = input().map_err(|e| head(e.to_string()))?;
        let meta = guarded(|| ArrowReaderMetadata::load(&first, ArrowReaderOptions::new()))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| head(format!("Parquet footer: {e}")))?;
        let names: Vec<String> = meta
            .schema()
            .fields()
            .iter()
            .map(|f| canonical(f.name()))
            .collect();
        let layout = Layout::new(&names)
            .map_err(|why| FlowError::File(format!("Parquet schema rejected: {why}")))?;
        if layout.slots[Field::SrcAddr as usize].is_none()
            && layout.slots[Field::PktSrcAddr as usize].is_none()
        {
            return Err(FlowError::NotFlowLogSchema(format!(
                "a Parquet file without a srcaddr column (columns: {})",
                names.join(", ")
            )));
        }
        let wanted: Vec<usize> = layout.slots.iter().flatten().copied().collect();
        let mask = ProjectionMask::roots(meta.parquet_schema(), wanted);
        let groups: Vec<u64> = meta
            .metadata()
            .row_groups()
            .iter()
            .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
            .collect();
        let open = move |g: usize| -> Result<ParquetRecordBatchReader, String> {
            let data = input().map_err(|e| e.to_string())?;
            guarded(|| {
                ParquetRecordBatchReaderBuilder::new_with_metadata(data, meta.clone())
                    .with_projection(mask.clone())
                    .with_row_groups(vec![g])
                    .with_batch_size(BATCH)
                    .build()
            })?
            .map_err(|e| e.to_string())
        };
        Ok(Reader {
            open: Box::new(open),
            groups,
            group: 0,
            current: None,
            pending: std::collections::VecDeque::new(),
            group_rows: 0,
            group_start: 0,
            index: 0,
            strict: false,
            summary: Summary::default(),
            consumed: 0,
            len,
            done: false,
        })
    }

    /// In strict mode an unusable row is an error, not a counted skip.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Row groups in the file.
    pub fn row_groups(&self) -> usize {
        self.groups.len()
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Bytes consumed so far (estimated from the row groups read).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Counts what is left of the current row group as unreadable and moves to the next.
    fn abandon_group(&mut self, why: String) -> Option<FlowError> {
        let g = self.group.saturating_sub(1);
        let total = self.groups.get(g).copied().unwrap_or(0);
        let left = total.saturating_sub(self.group_rows);
        let err = FlowError::Line {
            line: self.group_start + self.group_rows + 1,
            why: format!("row group {g}: {why}"),
        };
        self.current = None;
        if self.strict {
            return Some(err);
        }
        *self
            .summary
            .skipped
            .entry("unreadable Parquet row group".into())
            .or_default() += left;
        self.summary.records += left;
        self.index += left;
        if let FlowError::Line { line, why } = &err {
            self.summary.example(format!("row {line}: {why}"));
        }
        None
    }

    /// Turns the rows of one batch into records (and counted skips) in `pending`.
    fn rows(&mut self, batch: &RecordBatch, cols: &[Option<Col<'_>>]) {
        let group = self.group.saturating_sub(1);
        let first = self.group_start + self.group_rows + 1;
        let summary = &mut self.summary;
        for i in 0..batch.num_rows() {
            let row = first + i as u64;
            let index = self.index;
            self.index += 1;
            summary.records += 1;
            let mut warn = |w: &'static str| {
                *summary.warnings.entry(w.to_string()).or_default() += 1;
                summary.example(format!("row group {group}, row {row}: {w}"));
            };
            match flowlog::record(&Row { cols, i }, Format::Parquet, row, index, &mut warn) {
                Outcome::Record(r) => {
                    summary.decoded += 1;
                    self.pending.push_back(Ok(*r));
                }
                Outcome::Skip(why) => summary.skip(&why),
                Outcome::Malformed(why) => {
                    let why = format!("row group {group}: {why}");
                    if self.strict {
                        self.pending
                            .push_back(Err(FlowError::Line { line: row, why }));
                        return;
                    }
                    summary.skip(&"malformed flow-log row");
                    summary.example(format!("row {row}: {why}"));
                }
            }
        }
    }

    /// Reads the next batch into `pending`; `Ok(false)` at the end of the file.
    fn fill(&mut self) -> Result<bool, FlowError> {
        loop {
            if !self.pending.is_empty() {
                return Ok(true);
            }
            if self.current.is_none() {
                if self.group >= self.groups.len() {
                    return Ok(false);
                }
                let g = self.group;
                self.group += 1;
                self.group_start = self.groups[..g].iter().sum();
                self.group_rows = 0;
                match (self.open)(g) {
                    Ok(r) => self.current = Some(r),
                    Err(why) => {
                        if let Some(e) = self.abandon_group(why) {
                            return Err(e);
                        }
                        continue;
                    }
                }
                if self.len > 0 && !self.groups.is_empty() {
                    self.consumed = self.len * self.group as u64 / self.groups.len() as u64;
                }
            }
            let Some(reader) = self.current.as_mut() else {
                continue;
            };
            let next = match guarded(|| reader.next()) {
                Ok(n) => n,
                Err(why) => {
                    if let Some(e) = self.abandon_group(why) {
                        return Err(e);
                    }
                    continue;
                }
            };
            match next {
                None => self.current = None,
                Some(Ok(b)) => match columns(&b) {
                    Ok(cols) => {
                        self.rows(&b, &cols);
                        self.group_rows += b.num_rows() as u64;
                    }
                    Err(why) => {
                        if let Some(e) = self.abandon_group(why) {
                            return Err(e);
                        }
                    }
                },
                Some(Err(e)) => {
                    if let Some(e) = self.abandon_group(e.to_string()) {
                        return Err(e);
                    }
                }
            }
        }
    }
}

impl Iterator for Reader {
    type Item = Result<flowlog::Record, FlowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                if r.is_err() {
                    self.done = true;
                    self.pending.clear();
                }
                return Some(r);
            }
            if self.done {
                return None;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    self.consumed = self.len;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Runs `f`, turning a panic of the Parquet decoder into an error message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        format!("the Parquet decoder failed ({what})")
    })
}

/// A Parquet file on disk, as [`Reader::new`] takes it.
pub fn open_file(file: std::fs::File) -> Result<Reader, FlowError> {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let file = Arc::new(file);
    Reader::new(move || file.try_clone(), len)
}

/// Parquet bytes in memory, as [`Reader::new`] takes them.
pub fn open_bytes(bytes: bytes::Bytes) -> Result<Reader, FlowError> {
    let len = bytes.len() as u64;
    Reader::new(move || Ok(bytes.clone()), len)
}
