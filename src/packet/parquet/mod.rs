//! AWS VPC Flow Logs delivered as Parquet (Athena's columns for versions 2 to 10).
//!
//! Columns are found by name, in either spelling (`interface_id` as AWS's Parquet files
//! and Athena's DDL name them, or `interface-id`); each may be text or any integer type,
//! and `"-"`, an empty string or null means absent. Unknown columns are not read (the
//! projection holds only the fields sgsim uses). A schema that names a field twice is
//! rejected, as is a file without a `srcaddr` / `pkt-srcaddr` column (not a flow log).
//!
//! The file is read one row group at a time in batches of [`BATCH`] rows, so memory
//! follows the batch, not the file. Text columns are read as dictionaries (`dict.rs`):
//! an address or interface ID is parsed once per distinct value of a column chunk, and a
//! row's fields are read from columns typed once per batch (this halved the cost of the
//! scan; README has the figures). A row that cannot be used is counted like a malformed
//! text line, its message naming the row group and row; a row group that cannot be
//! decoded (corrupt pages, an unsupported column type) is counted row by row under
//! `unreadable Parquet row group` with one message naming it, and reading goes on with
//! the next row group. Every compression the `parquet` crate is built with here is read:
//! uncompressed, Snappy, gzip, LZ4 and ZSTD.
//!
//! The `parquet` crate has panicked on crafted files before: opening a file and decoding
//! each batch run under `catch_unwind`, and a panic there is counted like any other
//! unreadable row group (or refuses the file, when it happens on the footer). A panic hook
//! installed once keeps such caught panics off the terminal (a thread-local flag marks
//! the guarded sections); every other panic reaches the hook installed before it.
//!
//! # Row groups outside a window
//!
//! Given a `--since/--until` window ([`Reader::window`]), a row group whose footer
//! statistics place every row outside it is not read: its rows are counted under
//! `outside --since/--until`, as the rows the window leaves out of a group that is read,
//! and numbered on as if read. A row is outside when the later of its `start` and `end`
//! is before `since`, or its `start` is at or after `until` ([`Window::meets`]); a group
//! is, by its integer columns' statistics, when the largest `start` and `end` (an absent
//! column reads 0) are before `since`, or when no `start` is null and the smallest is at
//! or after `until`. Statistics only bound values, so a group they cannot place wholly
//! outside (text columns, no statistics, nulls, negative values, an unsigned column's
//! statistics in an old writer's signed order) is read. A row of a group left unread is
//! not looked at: what it would otherwise have been counted as (malformed, `NODATA`,
//! `SKIPDATA`, no addresses) or warned of (`start` after `end`, no ports, a newer version)
//! is not known, `--strict` does not see it, and it says nothing of whether the file is a
//! usable flow log ([`Summary::unread`] counts such rows); it is outside the window the
//! user asked about.
//!
//! Integers of every width are read; a `UInt64` value above `i64::MAX` is read exactly
//! where the field holds it (`bytes`, `packets`, `start`, `end`) and makes the row
//! malformed (out of range) elsewhere, as the same digits in a text log do.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::file::reader::ChunkReader;

use super::flowlog::{self, canonical, Field, Fields, FlowError, Format, Layout, Outcome, Val};
use super::input::{Window, OUTSIDE_WINDOW};
use super::Summary;

mod dict;
use dict::{dictionary_hint, Dicts, Pre};
mod lanes;
use lanes::Lanes;

/// Rows decoded at a time.
pub const BATCH: usize = 8192;

/// The magic bytes a Parquet file starts (and ends) with.
pub const MAGIC: &[u8; 4] = b"PAR1";

type Open = dyn FnMut(usize) -> Result<ParquetRecordBatchReader, String> + Send;

/// Where a reader's batches come from.
enum Supply {
    /// One row group at a time, decoded here by the `parquet` crate.
    Groups(Box<Open>),
    /// Every row group, in row order, from DataFusion's parallel Parquet scan; should the
    /// scan fail, the row-group reader takes over after the row group it failed in.
    #[cfg(feature = "fleet")]
    Scan(super::fleet::Batches, Box<Open>),
}

/// Reads flow-log records from a Parquet file, a row group at a time.
pub struct Reader {
    supply: Supply,
    /// Rows of each row group.
    groups: Vec<u64>,
    /// What each row group's statistics say of its rows' times.
    times: Vec<Times>,
    /// Row groups left unread: every row outside the window ([`Reader::window`]).
    outside: Vec<bool>,
    /// Row groups a DataFusion scan leaves out (it hands out the others' rows only).
    #[cfg(feature = "fleet")]
    skipped: Vec<bool>,
    group: usize,
    current: Option<ParquetRecordBatchReader>,
    /// Records of the last batch not handed out yet.
    pending: std::collections::VecDeque<Result<Box<flowlog::Record>, FlowError>>,
    /// Rows handed out of the current row group so far.
    group_rows: u64,
    /// First row (0-based) of the current row group.
    group_start: u64,
    index: u64,
    /// Rows of the file handed to [`Reader::rows`] so far (DataFusion scans).
    #[cfg(feature = "fleet")]
    scanned: u64,
    strict: bool,
    /// Dictionary entries read ahead (addresses, interface IDs).
    dicts: Dicts,
    summary: Summary,
    consumed: u64,
    len: u64,
    done: bool,
}

/// A column of a batch, typed once per batch so that reading a row's field is an index,
/// not a downcast.
enum Col<'a> {
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    /// Integers of any width, widened once per batch.
    Int {
        values: Vec<i64>,
        nulls: Option<NullBuffer>,
    },
    /// Unsigned 64-bit integers some of which do not fit an `i64`: those are read as their
    /// digits (as a JSON number that large is), so that a field they do not fit is
    /// malformed, out of range, and one they fit (`bytes`) gets them exactly.
    Wide(arrow_array::UInt64Array),
    /// Text kept as a dictionary (how the files are read, see [`dictionary_hint`]): each row
    /// points at an entry, and each entry was read once ([`Pre`]).
    Dict {
        keys: Vec<usize>,
        nulls: Option<NullBuffer>,
        values: &'a arrow_array::StringArray,
        pre: Arc<[Pre]>,
    },
}

/// The values of an integer column that fit an `i64` (every type but `UInt64`), widened.
fn widen<T: arrow_array::types::ArrowPrimitiveType>(a: &dyn Array) -> Vec<i64>
where
    T::Native: Into<i64>,
{
    a.as_primitive::<T>()
        .values()
        .iter()
        .map(|&v| v.into())
        .collect()
}

/// An integer column of any width as a [`Col`] of its own (`None`: not integers).
fn integers_col(arr: &dyn Array) -> Option<Col<'static>> {
    let int = |values: Vec<i64>| Col::Int {
        values,
        nulls: arr.nulls().cloned(),
    };
    Some(match arr.data_type() {
        DataType::Int8 => int(widen::<Int8Type>(arr)),
        DataType::Int16 => int(widen::<Int16Type>(arr)),
        DataType::Int32 => int(widen::<Int32Type>(arr)),
        DataType::Int64 => int(widen::<Int64Type>(arr)),
        DataType::UInt8 => int(widen::<UInt8Type>(arr)),
        DataType::UInt16 => int(widen::<UInt16Type>(arr)),
        DataType::UInt32 => int(widen::<UInt32Type>(arr)),
        DataType::UInt64 => {
            let a = arr.as_primitive::<UInt64Type>();
            let values: Option<Vec<i64>> =
                a.values().iter().map(|&v| i64::try_from(v).ok()).collect();
            match values {
                Some(values) => int(values),
                None => Col::Wide(a.clone()),
            }
        }
        _ => return None,
    })
}

impl<'a> Col<'a> {
    fn new(a: &'a ArrayRef, field: Field, dicts: &mut Dicts) -> Result<Col<'a>, String> {
        let arr: &dyn Array = a.as_ref();
        if let Some(col) = integers_col(arr) {
            return Ok(col);
        }
        Ok(match a.data_type() {
            DataType::Utf8 => Col::Utf8(a.as_string::<i32>()),
            DataType::LargeUtf8 => Col::LargeUtf8(a.as_string::<i64>()),
            DataType::Utf8View => Col::View(a.as_string_view()),
            // Integers kept as a dictionary (as a writer's Arrow schema may ask): each row's
            // value, read as the integer column it stands for.
            DataType::Dictionary(_, v) if v.is_integer() => {
                let dict = arr
                    .as_any_dictionary_opt()
                    .ok_or("is a dictionary that cannot be read")?;
                let n = arr.len();
                if dict.values().is_empty() {
                    // No entry: every row is null (and no key may be followed).
                    Col::Int {
                        values: vec![0; n],
                        nulls: Some(NullBuffer::new_null(n)),
                    }
                } else {
                    let rows = guarded(|| {
                        arrow_select::take::take(dict.values().as_ref(), dict.keys(), None)
                    })?
                    .map_err(|e| format!("is a dictionary that cannot be read ({e})"))?;
                    integers_col(rows.as_ref()).ok_or("is a dictionary that cannot be read")?
                }
            }
            DataType::Dictionary(_, v) if **v == DataType::Utf8 => {
                let dict = arr
                    .as_any_dictionary_opt()
                    .ok_or("is a dictionary that cannot be read")?;
                let values = dict.values().as_string::<i32>();
                Col::Dict {
                    // An empty dictionary (a chunk of nulls only) has no key to normalize
                    // (`normalized_keys` panics on it): every row is null.
                    keys: if values.is_empty() {
                        Vec::new()
                    } else {
                        dict.normalized_keys()
                    },
                    nulls: dict.keys().nulls().cloned(),
                    values,
                    pre: dicts.entries(field, values),
                }
            }
            other => return Err(format!("has type {other}, not text or an integer")),
        })
    }

    #[inline]
    fn get(&self, i: usize) -> Option<Val<'a>> {
        let null = |n: &Option<NullBuffer>| n.as_ref().is_some_and(|n| n.is_null(i));
        match self {
            Col::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)).and_then(text),
            Col::LargeUtf8(a) => (!a.is_null(i)).then(|| a.value(i)).and_then(text),
            Col::View(a) => (!a.is_null(i)).then(|| a.value(i)).and_then(text),
            Col::Int { values, nulls } => (!null(nulls)).then(|| Val::Int(values[i])),
            Col::Wide(a) => (!a.is_null(i)).then(|| {
                let v = a.value(i);
                match i64::try_from(v) {
                    Ok(v) => Val::Int(v),
                    Err(_) => Val::Str(std::borrow::Cow::Owned(v.to_string())),
                }
            }),
            Col::Dict {
                keys,
                nulls,
                values,
                pre,
            } => {
                if null(nulls) {
                    return None;
                }
                let k = *keys.get(i)?;
                match pre.get(k)? {
                    Pre::Null => None,
                    Pre::Addr(a) => Some(Val::Addr(*a)),
                    Pre::Eni(e) => Some(Val::Eni(e.clone())),
                    Pre::Text => text(values.value(k)),
                }
            }
        }
    }
}

/// A text cell's value: `-` and the empty string mean absent.
fn text(s: &str) -> Option<Val<'_>> {
    match s {
        "-" | "" => None,
        s => Some(Val::Str(std::borrow::Cow::Borrowed(s))),
    }
}

/// One row of a batch, its fields by name.
struct Row<'c, 'a> {
    cols: &'c [Option<Col<'a>>],
    i: usize,
}

impl Fields for Row<'_, '_> {
    #[inline]
    fn get(&self, field: Field) -> Option<Val<'_>> {
        self.cols[field as usize].as_ref()?.get(self.i)
    }
}

/// The flow-log fields of `schema`'s columns, their names in the `-` spelling.
fn layout(schema: &arrow_schema::Schema) -> Result<(Vec<String>, Layout), String> {
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| canonical(f.name()))
        .collect();
    let layout = Layout::new(&names)?;
    Ok((names, layout))
}

/// The batch's columns by field.
fn columns<'a>(batch: &'a RecordBatch, dicts: &mut Dicts) -> Result<Vec<Option<Col<'a>>>, String> {
    let (_, layout) = layout(&batch.schema())?;
    layout
        .slots
        .iter()
        .enumerate()
        .map(|(f, slot)| match slot {
            None => Ok(None),
            Some(c) => Col::new(batch.column(*c), Field::ALL[f], dicts)
                .map(Some)
                .map_err(|why| format!("column {} {why}", flowlog::Field::ALL[f].name())),
        })
        .collect()
}

/// The records of a batch whose columns are named as in a flow log (either spelling), one
/// per row in order: `None` where a row gives no record (skipped, or malformed: `warn`
/// never fails a row here). Columns of type `Null` are taken as absent. The same reading of
/// each row as [`Reader`]'s, for batches that do not come from a file (SQL functions).
#[cfg(feature = "fleet")]
pub(crate) fn batch_records(
    batch: &RecordBatch,
) -> Result<Vec<Option<Box<flowlog::Record>>>, String> {
    let kept: Vec<usize> = (0..batch.num_columns())
        .filter(|&c| batch.column(c).data_type() != &DataType::Null)
        .collect();
    let batch = batch.project(&kept).map_err(|e| e.to_string())?;
    let cols = columns(&batch, &mut Dicts::default())?;
    Ok((0..batch.num_rows())
        .map(|i| {
            let row = i as u64 + 1;
            match flowlog::record(
                &Row { cols: &cols, i },
                Format::Parquet,
                row,
                i as u64,
                &mut |_| {},
            ) {
                Outcome::Record(r) => Some(r),
                Outcome::Skip(_) | Outcome::Malformed(_) => None,
            }
        })
        .collect())
}

/// Reads each row of a batch whose columns are named as in a flow log (either spelling;
/// columns of type `Null` are absent) as [`Reader`] reads a row of a file: `each(i,
/// outcome)` for row `i`, in order, numbered `line(i)`; `warn(i, warning)` for a row used
/// despite something odd. For the folding plan ([`crate::whatif::fold`]), whose rows come
/// from DataFusion's scans.
#[cfg(feature = "fleet")]
pub(crate) fn each_row(
    batch: &RecordBatch,
    line: impl Fn(usize) -> u64,
    mut each: impl FnMut(usize, Outcome),
    mut warn: impl FnMut(usize, &'static str),
) -> Result<(), String> {
    let kept: Vec<usize> = (0..batch.num_columns())
        .filter(|&c| batch.column(c).data_type() != &DataType::Null)
        .collect();
    let batch = batch.project(&kept).map_err(|e| e.to_string())?;
    let cols = columns(&batch, &mut Dicts::default())?;
    let lanes = Lanes::new(&cols, batch.num_rows());
    for i in 0..batch.num_rows() {
        let row = line(i);
        let index = row.saturating_sub(1);
        let outcome = match lanes.record(&cols, i, row, index) {
            Some(o) => o,
            None => flowlog::record(
                &Row { cols: &cols, i },
                Format::Parquet,
                row,
                index,
                &mut |w| warn(i, w),
            ),
        };
        each(i, outcome);
    }
    Ok(())
}

impl Reader {
    /// The rows of each row group, in file order (as its footer gives them).
    pub fn group_rows(&self) -> &[u64] {
        &self.groups
    }

    /// Opens a Parquet flow log; `input` gives a fresh handle on the same bytes for each
    /// row group (a file's `try_clone`, a cheap clone of bytes or of an object reader).
    pub fn new<T, F>(mut input: F, len: u64) -> Result<Reader, FlowError>
    where
        T: ChunkReader + 'static,
        F: FnMut() -> std::io::Result<T> + Send + 'static,
    {
        let first = input().map_err(|e| FlowError::File(e.to_string()))?;
        let (meta, wanted) = inspect(&first)?;
        let groups = row_groups(&meta);
        let times = group_times(&meta);
        let open = opener(input, meta, wanted);
        Ok(Reader::with(Supply::Groups(open), groups, times, len))
    }

    /// Opens a Parquet flow log on disk for DataFusion's parallel scan: its row groups are
    /// decoded on every core and handed out in row order, as [`Reader::new`] hands them;
    /// those `window` leaves unread are left out of the scan ([`Reader::window`]).
    #[cfg(feature = "fleet")]
    pub fn scan(path: &std::path::Path, window: Window) -> Result<Reader, FlowError> {
        Reader::scanned(path, window, |names, schema, skip| {
            super::fleet::Batches::open(path, names, Some(schema), skip)
        })
    }

    /// As [`Reader::scan`], the scan run by the Ballista cluster at `url` (it reads every
    /// row group; those `window` leaves unread are counted as such).
    #[cfg(feature = "cluster")]
    pub fn scan_remote(
        url: &str,
        path: &std::path::Path,
        window: Window,
    ) -> Result<Reader, FlowError> {
        Reader::scanned(path, window, |names, schema, _| {
            super::fleet::Batches::open_remote(url, path, names, Some(schema))
        })
    }

    #[cfg(feature = "fleet")]
    fn scanned(
        path: &std::path::Path,
        window: Window,
        start: impl FnOnce(
            &[String],
            &arrow_schema::Schema,
            &[bool],
        ) -> Result<super::fleet::Batches, String>,
    ) -> Result<Reader, FlowError> {
        let file = std::fs::File::open(path).map_err(|e| FlowError::File(e.to_string()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let (meta, wanted) = inspect(&file)?;
        let names: Vec<String> = wanted
            .iter()
            .map(|&c| meta.schema().field(c).name().clone())
            .collect();
        let groups = row_groups(&meta);
        let times = group_times(&meta);
        let outside: Vec<bool> = times.iter().map(|t| t.outside(window)).collect();
        // The scan reads the text columns as dictionaries too (the schema `inspect` hints).
        let batches = start(&names, meta.schema(), &outside)
            .map_err(|why| FlowError::File(format!("DataFusion: {why}")))?;
        let skipped = if batches.skips() {
            outside
        } else {
            vec![false; groups.len()]
        };
        let file = Arc::new(file);
        let open = opener(move || file.try_clone(), meta, wanted);
        let mut reader = Reader::with(Supply::Scan(batches, open), groups, times, len);
        reader.skipped = skipped;
        Ok(reader.window(window))
    }

    fn with(supply: Supply, groups: Vec<u64>, times: Vec<Times>, len: u64) -> Reader {
        Reader {
            supply,
            outside: vec![false; groups.len()],
            #[cfg(feature = "fleet")]
            skipped: vec![false; groups.len()],
            groups,
            times,
            group: 0,
            current: None,
            pending: std::collections::VecDeque::new(),
            group_rows: 0,
            group_start: 0,
            index: 0,
            #[cfg(feature = "fleet")]
            scanned: 0,
            strict: false,
            dicts: Dicts::default(),
            summary: Summary::default(),
            consumed: 0,
            len,
            done: false,
        }
    }

    /// In strict mode an unusable row is an error, not a counted skip.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Reads only the rows in `window`: row groups whose statistics place every row
    /// outside it are not read (see the module docs), their rows counted under `outside
    /// --since/--until`. The rows of the groups read are handed out whatever their time
    /// (the caller keeps those in the window).
    pub fn window(mut self, window: Window) -> Self {
        self.outside = self.times.iter().map(|t| t.outside(window)).collect();
        // The groups a scan was opened without stay unread whatever the window.
        #[cfg(feature = "fleet")]
        for (o, &s) in self.outside.iter_mut().zip(&self.skipped) {
            *o |= s;
        }
        self
    }

    /// Whether the DataFusion scan leaves out row group `g` (its rows never come).
    #[cfg(feature = "fleet")]
    fn scan_skips(&self, g: usize) -> bool {
        self.skipped.get(g).copied().unwrap_or(false)
    }

    /// Per row group, in file order: whether it is left unread as outside the window.
    pub fn outside_groups(&self) -> &[bool] {
        &self.outside
    }

    /// Counts `n` rows of a row group left unread as outside the window.
    fn pass_over(&mut self, n: u64) {
        self.summary.records += n;
        self.summary.unread += n;
        if n > 0 {
            *self
                .summary
                .skipped
                .entry(OUTSIDE_WINDOW.to_string())
                .or_default() += n;
        }
        self.index += n;
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
        let err = FlowError::Row {
            row: self.group_start + self.group_rows + 1,
            group: g,
            why,
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
        self.summary.example(err.to_string());
        None
    }

    /// Turns the rows of one batch into records (and counted skips) in `pending`.
    fn rows(&mut self, batch: &RecordBatch, cols: &[Option<Col<'_>>]) {
        let group = self.group.saturating_sub(1);
        let first = self.group_start + self.group_rows + 1;
        let summary = &mut self.summary;
        let lanes = Lanes::new(cols, batch.num_rows());
        for i in 0..batch.num_rows() {
            let row = first + i as u64;
            let index = self.index;
            self.index += 1;
            summary.records += 1;
            let mut warn = |w: &'static str| {
                *summary.warnings.entry(w.to_string()).or_default() += 1;
                summary.example(format!("row group {group}, row {row}: {w}"));
            };
            let outcome = match lanes.record(cols, i, row, index) {
                Some(o) => o,
                None => flowlog::record(&Row { cols, i }, Format::Parquet, row, index, &mut warn),
            };
            match outcome {
                Outcome::Record(r) => {
                    summary.decoded += 1;
                    self.pending.push_back(Ok(r));
                }
                Outcome::Skip(why) => summary.skip(&why),
                Outcome::Malformed(why) => {
                    let err = FlowError::Row { row, group, why };
                    if self.strict {
                        self.pending.push_back(Err(err));
                        return;
                    }
                    summary.skip(&"malformed flow-log row");
                    summary.example(err.to_string());
                }
            }
        }
    }

    /// Reads the next batch into `pending`; `Ok(false)` at the end of the file.
    fn fill(&mut self) -> Result<bool, FlowError> {
        #[cfg(feature = "fleet")]
        if matches!(self.supply, Supply::Scan(..)) {
            return self.fill_scanned();
        }
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
                if self.outside.get(g).copied().unwrap_or(false) {
                    self.pass_over(self.groups[g]);
                    self.group_rows = self.groups[g];
                    continue;
                }
                let opened = match &mut self.supply {
                    Supply::Groups(open) => open(g),
                    #[cfg(feature = "fleet")]
                    Supply::Scan(..) => return Ok(false),
                };
                match opened {
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
                Some(Ok(b)) => match columns(&b, &mut self.dicts) {
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
    /// [`Reader::fill`] for a DataFusion scan: batches arrive in row order, each cut at
    /// row-group boundaries so rows are named as the row-group reader names them. Should
    /// the scan fail, the rest of the row group it failed in is counted as unreadable and
    /// the row-group reader goes on with the next one, so a damaged file gives what the
    /// row-group reader gives.
    #[cfg(feature = "fleet")]
    fn fill_scanned(&mut self) -> Result<bool, FlowError> {
        let total: u64 = self.groups.iter().sum();
        while self.pending.is_empty() {
            let Supply::Scan(scan, _) = &mut self.supply else {
                return self.fill();
            };
            let remote = scan.is_remote();
            let next = scan.next_batch();
            if next.is_none() {
                // The groups after the last one read that the scan left out.
                self.pass_skipped();
            }
            let batch = match next {
                None if self.scanned == total => return Ok(false),
                None => Err(format!(
                    "the scan ended after {} of {total} rows",
                    self.scanned
                )),
                Some(b) => b,
            };
            let failed = match batch {
                Ok(batch) => self.scanned_batch(&batch).err(),
                Err(why) => Some(why),
            };
            if let Some(why) = failed {
                if remote {
                    self.done = true;
                    return Err(FlowError::File(format!(
                        "the cluster's scan failed after {} rows: {why}",
                        self.scanned
                    )));
                }
                return self.take_over(&why);
            }
            if let Some(part) = (self.len * self.scanned).checked_div(total) {
                self.consumed = part;
            }
        }
        Ok(true)
    }

    /// The scan failed at row `scanned`: the row-group reader takes over from there.
    #[cfg(feature = "fleet")]
    fn take_over(&mut self, why: &str) -> Result<bool, FlowError> {
        let placeholder = Supply::Groups(Box::new(|_| Err(String::new())));
        self.supply = match std::mem::replace(&mut self.supply, placeholder) {
            // The scan (and its tasks) end here; its row-group reader goes on.
            Supply::Scan(_, open) => Supply::Groups(open),
            groups => groups,
        };
        self.current = None;
        // The row group holding row `scanned` (none when every row was handed out).
        let mut start = 0;
        let mut failed = None;
        for (g, &n) in self.groups.iter().enumerate() {
            if self.scanned < start + n {
                failed = Some(g);
                break;
            }
            start += n;
        }
        let Some(g) = failed else {
            self.group = self.groups.len();
            return self.fill();
        };
        self.group = g + 1;
        self.group_start = start;
        self.group_rows = self.scanned - start;
        if self.outside.get(g).copied().unwrap_or(false) {
            // A group the window leaves unread: the rest of it counts as such, whatever
            // the scan met in it.
            self.pass_over(self.groups[g] - self.group_rows);
            self.group_rows = self.groups[g];
        } else if let Some(e) = self.abandon_group(format!("DataFusion scan: {why}")) {
            return Err(e);
        }
        self.fill()
    }

    /// Counts the row groups from the next one on that the scan leaves out, as read up to
    /// the first it reads.
    #[cfg(feature = "fleet")]
    fn pass_skipped(&mut self) {
        loop {
            // The group holding the next row (the current one while rows of it remain).
            let (mut g, mut start) = (self.group, self.group_start);
            if g > 0 && self.scanned >= start + self.groups[g - 1] {
                start += self.groups[g - 1];
            } else if g > 0 {
                return;
            }
            // Groups of no rows hold nothing to pass.
            while g < self.groups.len() && self.groups[g] == 0 {
                g += 1;
            }
            if g >= self.groups.len() || !self.scan_skips(g) {
                return;
            }
            let n = self.groups[g];
            self.group = g + 1;
            self.group_start = start;
            self.group_rows = n;
            self.pass_over(n);
            self.scanned += n;
        }
    }

    /// Hands the rows of one scanned batch to [`Reader::rows`], a row group at a time.
    #[cfg(feature = "fleet")]
    fn scanned_batch(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let mut off = 0;
        while off < batch.num_rows() {
            self.pass_skipped();
            // The row group holding the next row (row groups of 0 rows are passed over).
            while self.group == 0 || self.scanned >= self.group_start + self.groups[self.group - 1]
            {
                if self.group > 0 {
                    self.group_start += self.groups[self.group - 1];
                }
                if self.group >= self.groups.len() {
                    return Err(format!("more rows than the footer's {}", self.group_start));
                }
                self.group += 1;
            }
            self.group_rows = self.scanned - self.group_start;
            let left = self.group_start + self.groups[self.group - 1] - self.scanned;
            let take = (batch.num_rows() - off).min(usize::try_from(left).unwrap_or(usize::MAX));
            if self.outside.get(self.group - 1).copied().unwrap_or(false) {
                // A scan that read the group anyway: its rows count as left unread.
                self.pass_over(take as u64);
            } else {
                let slice = batch.slice(off, take);
                let cols = columns(&slice, &mut self.dicts)?;
                self.rows(&slice, &cols);
            }
            off += take;
            self.scanned += take as u64;
        }
        Ok(())
    }
}

impl Iterator for Reader {
    type Item = Result<flowlog::Record, FlowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_boxed().map(|r| r.map(|b| *b))
    }
}

impl Reader {
    /// The next record as the decoder made it, boxed (what an [`Item`](super::Item) holds:
    /// no copy out of the box and into a new one).
    pub(crate) fn next_boxed(&mut self) -> Option<Result<Box<flowlog::Record>, FlowError>> {
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

/// Opens row group `g` of the file `input` gives handles on, for the columns `wanted`.
fn opener<T, F>(mut input: F, meta: ArrowReaderMetadata, wanted: Vec<usize>) -> Box<Open>
where
    T: ChunkReader + 'static,
    F: FnMut() -> std::io::Result<T> + Send + 'static,
{
    let mask = ProjectionMask::roots(meta.parquet_schema(), wanted);
    Box::new(
        move |g: usize| -> Result<ParquetRecordBatchReader, String> {
            let data = input().map_err(|e| e.to_string())?;
            guarded(|| {
                ParquetRecordBatchReaderBuilder::new_with_metadata(data, meta.clone())
                    .with_projection(mask.clone())
                    .with_row_groups(vec![g])
                    .with_batch_size(BATCH)
                    .build()
            })?
            .map_err(|e| e.to_string())
        },
    )
}

/// The Arrow schema a Parquet flow log on disk is scanned with: its own, text columns as
/// dictionaries (the hint the readers use), from its footer. For DataFusion's scans of the
/// folding plan ([`crate::whatif::fold`]).
#[cfg(feature = "fleet")]
pub(crate) fn scan_schema(path: &std::path::Path) -> Result<arrow_schema::SchemaRef, FlowError> {
    let file = std::fs::File::open(path).map_err(|e| FlowError::File(e.to_string()))?;
    let (meta, _) = inspect(&file)?;
    Ok(meta.schema().clone())
}

/// Reads a Parquet file's footer and checks that it is a flow log; returns the metadata
/// and the columns sgsim reads (by index in the Arrow schema).
fn inspect<T: ChunkReader + 'static>(
    first: &T,
) -> Result<(ArrowReaderMetadata, Vec<usize>), FlowError> {
    let meta = guarded(|| ArrowReaderMetadata::load(first, ArrowReaderOptions::new()))
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| FlowError::File(format!("Parquet footer: {e}")))?;
    let (names, layout) = layout(meta.schema())
        .map_err(|why| FlowError::File(format!("Parquet schema rejected: {why}")))?;
    if layout.slots[Field::SrcAddr as usize].is_none()
        && layout.slots[Field::PktSrcAddr as usize].is_none()
    {
        return Err(FlowError::NotFlowLogSchema(format!(
            "a Parquet file without a srcaddr column (columns: {})",
            names.join(", ")
        )));
    }
    let mut wanted: Vec<usize> = layout.slots.iter().flatten().copied().collect();
    wanted.sort_unstable();
    let meta = dictionary_hint(meta, &wanted);
    Ok((meta, wanted))
}

/// Rows of each row group.
fn row_groups(meta: &ArrowReaderMetadata) -> Vec<u64> {
    meta.metadata()
        .row_groups()
        .iter()
        .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
        .collect()
}

/// What a row group's statistics say of its rows' times (Unix seconds, as the records
/// read them: an absent column or a null value reads 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Times {
    /// No row's `start` or `end` is later than this.
    latest: Option<u64>,
    /// No row's `start` is earlier than this (known only when no `start` is null).
    earliest_start: Option<u64>,
}

impl Times {
    /// Whether every row lies outside `window` ([`Window::meets`] of each row is false).
    fn outside(&self, window: Window) -> bool {
        let before = window
            .since
            .zip(self.latest)
            .is_some_and(|(since, latest)| latest < since);
        let after = window
            .until
            .zip(self.earliest_start)
            .is_some_and(|(until, earliest)| earliest >= until);
        before || after
    }
}

/// Per row group: what the statistics of the `start` and `end` columns say of its rows'
/// times; nothing where they cannot say (text columns, no statistics, negative values).
fn group_times(meta: &ArrowReaderMetadata) -> Vec<Times> {
    let groups = meta.metadata().row_groups();
    let unknown = vec![Times::default(); groups.len()];
    let Ok((_, layout)) = layout(meta.schema()) else {
        return unknown;
    };
    // Per row group: the column's smallest and largest values and its null count; `None`
    // for the column: absent (every row reads 0); `Some(None)`: it cannot be read.
    let stats = |field: Field| -> Option<Option<Vec<Bound>>> {
        let c = layout.slots[field as usize]?;
        let name = meta.schema().field(c).name();
        // A column that cannot hold nulls has none, whatever the statistics say of them.
        let required = !meta.schema().field(c).is_nullable();
        let read = || -> Option<Vec<Bound>> {
            let convert = StatisticsConverter::try_new(name, meta.schema(), meta.parquet_schema())
                .ok()?
                .with_missing_null_counts_as_zero(false);
            // Old writers' `min`/`max` are in signed order, wrong for an unsigned column.
            if meta.schema().field(c).data_type().is_unsigned_integer() {
                let column = convert.parquet_column_index()?;
                let deprecated = groups.iter().any(|g| {
                    g.column(column)
                        .statistics()
                        .is_some_and(|s| s.is_min_max_deprecated())
                });
                if deprecated {
                    return None;
                }
            }
            let mins = integers(convert.row_group_mins(groups).ok()?.as_ref())?;
            let maxes = integers(convert.row_group_maxes(groups).ok()?.as_ref())?;
            let nulls = convert.row_group_null_counts(groups).ok()?;
            (mins.len() == groups.len()
                && maxes.len() == groups.len()
                && nulls.len() == groups.len())
            .then(|| {
                (0..groups.len())
                    .map(|g| Bound {
                        min: mins[g],
                        max: maxes[g],
                        nulls: if required {
                            Some(0)
                        } else {
                            nulls.is_valid(g).then(|| nulls.value(g))
                        },
                    })
                    .collect()
            })
        };
        Some(read())
    };
    let (start, end) = (stats(Field::Start), stats(Field::End));
    let zero = Bound {
        min: Some(0),
        max: Some(0),
        nulls: Some(0),
    };
    let at = |s: &Option<Option<Vec<Bound>>>, g: usize| -> Option<Bound> {
        match s {
            None => Some(zero),
            Some(None) => None,
            Some(Some(v)) => v.get(g).copied(),
        }
    };
    (0..groups.len())
        .map(|g| {
            let (Some(s), Some(e)) = (at(&start, g), at(&end, g)) else {
                return Times::default();
            };
            // A negative value is a malformed row: such a group is read.
            if s.min.is_some_and(|v| v < 0) || e.min.is_some_and(|v| v < 0) {
                return Times::default();
            }
            let latest = match (s.max, e.max) {
                (Some(a), Some(b)) => u64::try_from(a.max(b)).ok(),
                _ => None,
            };
            let earliest_start = match (s.min, s.nulls) {
                (Some(m), Some(0)) => u64::try_from(m).ok(),
                _ => None,
            };
            Times {
                latest,
                earliest_start,
            }
        })
        .collect()
}

/// A column chunk's statistics.
#[derive(Clone, Copy, Debug)]
struct Bound {
    min: Option<i128>,
    max: Option<i128>,
    nulls: Option<u64>,
}

/// The values of an integer array of any width (`None`: not integers).
fn integers(a: &dyn Array) -> Option<Vec<Option<i128>>> {
    Some(match integers_col(a)? {
        Col::Int { values, nulls } => values
            .iter()
            .enumerate()
            .map(|(i, &v)| (!nulls.as_ref().is_some_and(|n| n.is_null(i))).then_some(v.into()))
            .collect(),
        Col::Wide(w) => w.iter().map(|v| v.map(Into::into)).collect(),
        _ => return None,
    })
}

thread_local! {
    /// Whether this thread runs [`guarded`] code, whose panics are caught and reported as
    /// errors: the panic hook stays quiet for them.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once per process, a panic hook that says nothing of a panic inside
/// [`guarded`] (it becomes an error message) and hands every other panic to the hook that
/// was installed before (the default prints it).
fn quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A panic while the thread's locals are torn down is not a guarded one.
            if !GUARDED.try_with(std::cell::Cell::get).unwrap_or(false) {
                before(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic of the Parquet decoder into an error message (and printing
/// nothing of it: see [`quiet_hook`]).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    quiet_hook();
    let outer = GUARDED.with(|g| g.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.map_err(|p| {
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

#[cfg(test)]
mod tests;
