//! Text columns kept as dictionaries read exactly as plain text columns do.

use super::*;
use arrow_array::types::Int32Type;
use arrow_array::{DictionaryArray, Int64Array, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// Rows that take every path of an entry: IPv4, IPv6 written in capitals, absent (`-`,
/// empty, null), text that is no address, an address of the other family, interfaces
/// repeated and absent, a `NODATA` row, and `pkt-srcaddr` over `srcaddr`. Columns as in
/// [`NAMES`]; `~` is a null, `''` the empty string.
const ROWS: [&str; 11] = [
    "eni-a 10.0.0.1 10.0.0.2 ~ ACCEPT OK",
    "eni-a 2001:DB8::1 2001:db8::2 ~ REJECT OK",
    "eni-b - 10.0.0.2 10.0.0.9 ACCEPT OK",
    "eni-b not-an-address 10.0.0.2 ~ ACCEPT OK",
    "- 10.0.0.1 10.0.0.3 - ACCEPT OK",
    "~ 10.0.0.1 10.0.0.3 ~ ACCEPT OK",
    "eni-c '' ~ ~ ACCEPT OK",
    "eni-a 10.0.0.1 10.0.0.2 ~ maybe OK",
    "eni-a - - ~ - NODATA",
    "eni-c 10.0.0.1 2001:db8::2 ~ ACCEPT OK",
    "eni-a 10.0.0.1 10.0.0.2 ~ ~ ~",
];

/// Column `c` of row `r`.
fn cell(r: &str, c: usize) -> Option<&str> {
    match r.split(' ').nth(c)? {
        "~" => None,
        "''" => Some(""),
        v => Some(v),
    }
}

const NAMES: [&str; 6] = [
    "interface_id",
    "srcaddr",
    "dstaddr",
    "pkt_srcaddr",
    "action",
    "log_status",
];

/// The rows as a batch, text as plain strings or as dictionaries.
fn batch(dictionaries: bool) -> RecordBatch {
    let mut cols: Vec<(&str, ArrayRef)> = NAMES
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let values = ROWS.iter().map(|r| cell(r, c));
            let col: ArrayRef = if dictionaries {
                Arc::new(values.collect::<DictionaryArray<Int32Type>>())
            } else {
                Arc::new(values.collect::<StringArray>())
            };
            (*name, col)
        })
        .collect();
    let n = ROWS.len() as i64;
    let int =
        |f: fn(i64) -> i64| -> ArrayRef { Arc::new(Int64Array::from_iter_values((0..n).map(f))) };
    cols.push(("srcport", int(|i| 40000 + i)));
    cols.push(("dstport", int(|_| 443)));
    cols.push(("protocol", int(|_| 6)));
    cols.push(("start", int(|i| 1_700_000_000 + i)));
    cols.push(("end", int(|i| 1_700_000_060 + i)));
    RecordBatch::try_from_iter(cols).unwrap()
}

/// What each row reads as: its record, or why it gives none.
fn read(batch: &RecordBatch, dicts: &mut Dicts) -> Vec<String> {
    let cols = columns(batch, dicts).unwrap();
    (0..batch.num_rows())
        .map(|i| {
            let mut warnings = Vec::new();
            let out = match flowlog::record(
                &Row { cols: &cols, i },
                Format::Parquet,
                i as u64 + 1,
                i as u64,
                &mut |w| warnings.push(w),
            ) {
                Outcome::Record(r) => format!("{r:?}"),
                Outcome::Skip(why) => format!("skip: {why}"),
                Outcome::Malformed(why) => format!("malformed: {why}"),
            };
            format!("{out} {warnings:?}")
        })
        .collect()
}

#[test]
fn dictionary_columns_read_as_plain_text_columns_do() {
    let plain = read(&batch(false), &mut Dicts::default());
    let dict = read(&batch(true), &mut Dicts::default());
    assert_eq!(plain, dict);
    // Every path was taken.
    assert!(plain[1].contains("2001:db8::1"), "{}", plain[1]);
    assert!(plain[2].contains("10.0.0.9"), "{}", plain[2]);
    assert!(plain[3].contains("srcaddr 'not-an-address' is not an IP address"));
    assert!(plain[4].contains("eni: None") && plain[5].contains("eni: None"));
    assert!(plain[6].contains("skip: record without addresses"));
    assert!(plain[7].contains("action 'maybe'"));
    assert!(plain[8].contains("skip: NODATA"));
    assert!(plain[9].starts_with("malformed: "), "{}", plain[9]);
    assert!(plain[10].contains("action: None"), "{}", plain[10]);
}

#[test]
fn dictionary_entries_are_read_once_per_dictionary() {
    let mut dicts = Dicts::default();
    let values = StringArray::from(vec!["10.0.0.1", "-", "x"]);
    let first = dicts.entries(Field::SrcAddr, &values);
    assert!(matches!(first[0], Pre::Addr(_)) && matches!(first[1], Pre::Text));
    // The same buffers (another batch of the column chunk): the entries already read.
    assert!(Arc::ptr_eq(
        &first,
        &dicts.entries(Field::SrcAddr, &values.clone())
    ));
    // Equal text in other buffers (another chunk) is read again, and replaces it.
    let other = StringArray::from(vec!["10.0.0.1", "-", "x"]);
    let again = dicts.entries(Field::SrcAddr, &other);
    assert!(!Arc::ptr_eq(&first, &again));
    assert!(Arc::ptr_eq(&again, &dicts.entries(Field::SrcAddr, &other)));
    // Fields keep their own.
    let enis = dicts.entries(Field::InterfaceId, &values);
    assert!(matches!(&enis[0], Pre::Eni(e) if e.as_str() == "10.0.0.1"));
    assert!(Arc::ptr_eq(&again, &dicts.entries(Field::SrcAddr, &other)));
}

/// The rows as a Parquet file with plain string columns, row groups of four rows.
fn file(dictionary: bool) -> bytes::Bytes {
    let b = batch(false);
    let props = WriterProperties::builder()
        .set_dictionary_enabled(dictionary)
        .set_max_row_group_row_count(Some(4))
        .build();
    written_file(&b, props)
}

/// `b` as a Parquet file written with `props`.
fn written_file(b: &RecordBatch, props: WriterProperties) -> bytes::Bytes {
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, b.schema(), Some(props)).unwrap();
    w.write(b).unwrap();
    w.close().unwrap();
    bytes::Bytes::from(out)
}

#[test]
fn files_read_their_text_as_dictionaries_and_give_the_plain_reading() {
    let expect: Vec<String> = read(&batch(false), &mut Dicts::default())
        .into_iter()
        .filter(|r| !r.starts_with("skip") && !r.starts_with("malformed"))
        .collect();
    for dictionary in [true, false] {
        let bytes = file(dictionary);
        let (meta, wanted) = inspect(&bytes).unwrap();
        for c in wanted {
            let f = meta.schema().field(c);
            if NAMES.contains(&f.name().as_str()) {
                assert!(matches!(f.data_type(), DataType::Dictionary(..)), "{f:?}");
            }
        }
        let mut reader = open_bytes(bytes).unwrap();
        let got: Vec<String> = reader
            .by_ref()
            .map(|r| format!("{:?} []", r.unwrap()))
            .collect();
        // Records carry their row in the file, as the plain reading numbers them.
        assert_eq!(got, expect, "dictionary-encoded pages: {dictionary}");
        let s = reader.summary();
        assert_eq!((s.records, s.decoded), (ROWS.len() as u64, 6));
        assert_eq!(s.skipped["malformed flow-log row"], 3, "{s:?}");
        assert!(s.examples[0].contains("row 4: row group 0: srcaddr 'not-an-address'"));
    }
}

#[test]
fn regression_a_chunk_of_nulls_only_is_an_empty_dictionary_not_a_panic() {
    // `pkt_srcaddr` null in every row: its dictionary has no entry, and arrow's
    // `normalized_keys` panics on such a dictionary.
    let keys = arrow_array::Int32Array::from(vec![None, None]);
    let empty: ArrayRef = Arc::new(
        DictionaryArray::<Int32Type>::try_new(
            keys,
            Arc::new(StringArray::from(Vec::<&str>::new())),
        )
        .unwrap(),
    );
    let b = batch(true);
    let b = b.slice(0, 2);
    let mut cols: Vec<(String, ArrayRef)> = b
        .schema()
        .fields()
        .iter()
        .zip(b.columns())
        .map(|(f, c)| (f.name().clone(), c.clone()))
        .collect();
    let at = cols.iter().position(|(n, _)| n == "pkt_srcaddr").unwrap();
    cols[at].1 = empty;
    let b = RecordBatch::try_from_iter(cols).unwrap();
    let got = read(&b, &mut Dicts::default());
    assert_eq!(got, read(&batch(false).slice(0, 2), &mut Dicts::default()));
}

/// How a generated column holds its field.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Missing,
    Dict,
    Plain,
    Int64,
    Int32,
}

/// A generated cell: text, a number, or null.
#[derive(Clone, Debug)]
enum Lit {
    Text(&'static str),
    Num(i64),
    Null,
}

/// Values of every form a field meets: good ones of each field, absent ones, text where a
/// number belongs, numbers out of range, words that are no direction or action.
const TEXTS: [&str; 24] = [
    "10.0.0.1",
    "10.0.0.2",
    "2001:db8::1",
    "-",
    "",
    "NODATA",
    "SKIPDATA",
    "OK",
    "ACCEPT",
    "accept",
    "REJECT",
    "reject",
    "maybe",
    "ingress",
    "in",
    "egress",
    "out",
    "eni-a",
    "6",
    "443",
    "-5",
    "70000",
    "BPA",
    "not-an-address",
];
const NUMS: [i64; 16] = [
    -1,
    0,
    1,
    2,
    5,
    6,
    11,
    17,
    255,
    256,
    443,
    65535,
    65536,
    1_700_000_000,
    1_700_000_060,
    i64::MAX,
];

/// The natural column of each field, and a good value of it in row `r`.
fn natural(f: Field, r: usize) -> (Kind, Lit) {
    // Words are null in one row of seven (after an offset, so that null rows differ).
    let pick = |xs: &[&'static str]| match (r + f as usize) % 7 {
        6 if !matches!(f, Field::SrcAddr | Field::DstAddr) => Lit::Null,
        _ => Lit::Text(xs[r % xs.len()]),
    };
    match f {
        Field::InterfaceId | Field::EniId => (Kind::Dict, pick(&["eni-a", "eni-b", "-"])),
        Field::SrcAddr | Field::PktSrcAddr => (Kind::Dict, pick(&["10.0.0.1", "10.0.0.7"])),
        Field::DstAddr | Field::PktDstAddr => (Kind::Dict, pick(&["10.0.0.2", "10.0.0.9"])),
        Field::Action => (
            Kind::Dict,
            pick(&["ACCEPT", "REJECT", "accept", "reject", "-"]),
        ),
        Field::LogStatus => (Kind::Dict, pick(&["OK", "OK", "OK", "NODATA"])),
        Field::FlowDirection | Field::Direction => {
            (Kind::Dict, pick(&["ingress", "egress", "in", "out", "-"]))
        }
        Field::RejectReason => (Kind::Dict, pick(&["-", "-", "BPA"])),
        Field::Protocol => (Kind::Int32, Lit::Num([6, 17, 1][r % 3])),
        Field::SrcPort => (Kind::Int32, Lit::Num(40000 + r as i64)),
        Field::DstPort => (Kind::Int32, Lit::Num(443)),
        Field::Version => (Kind::Int32, Lit::Num(5)),
        Field::TcpFlags => (Kind::Int32, Lit::Num(r as i64 % 64)),
        Field::Start => (Kind::Int64, Lit::Num(1_700_000_000 + r as i64)),
        Field::End => (Kind::Int64, Lit::Num(1_700_000_060 + r as i64)),
        Field::Packets | Field::Bytes => (Kind::Int64, Lit::Num(r as i64 * 7)),
    }
}

/// A batch with `kinds` per field and `rows` of cells per field.
fn generated(kinds: &[Kind], rows: &[Vec<Lit>]) -> RecordBatch {
    let mut cols: Vec<(&str, ArrayRef)> = Vec::new();
    for (f, &kind) in Field::ALL.iter().zip(kinds) {
        let cells = rows.iter().map(|r| &r[*f as usize]);
        let text = |l: &Lit| match l {
            Lit::Text(t) => Some(t.to_string()),
            Lit::Num(n) => Some(n.to_string()),
            Lit::Null => None,
        };
        let num = |l: &Lit| match l {
            Lit::Text(t) => t.parse::<i64>().ok(),
            Lit::Num(n) => Some(*n),
            Lit::Null => None,
        };
        let col: ArrayRef = match kind {
            Kind::Missing => continue,
            Kind::Dict => {
                let cells: Vec<Option<String>> = cells.map(text).collect();
                Arc::new(
                    cells
                        .iter()
                        .map(Option::as_deref)
                        .collect::<DictionaryArray<Int32Type>>(),
                )
            }
            Kind::Plain => Arc::new(cells.map(text).collect::<StringArray>()),
            Kind::Int64 => Arc::new(cells.map(num).collect::<Int64Array>()),
            Kind::Int32 => Arc::new(
                cells
                    .map(|l| num(l).map(|n| n as i32))
                    .collect::<arrow_array::Int32Array>(),
            ),
        };
        cols.push((f.name(), col));
    }
    RecordBatch::try_from_iter(cols).unwrap()
}

/// An outcome written out, with the warnings raised on the way.
fn written(o: Outcome, warnings: &[&str]) -> String {
    let o = match o {
        Outcome::Record(r) => format!("{r:?}"),
        Outcome::Skip(why) => format!("skip: {why}"),
        Outcome::Malformed(why) => format!("malformed: {why}"),
    };
    format!("{o} {warnings:?}")
}

/// Rows the lanes answered, of all rows: and a failure where an answer differs from the
/// general reading's.
fn lanes_against_record(batch: &RecordBatch) -> Result<(usize, usize), String> {
    let cols = columns(batch, &mut Dicts::default())?;
    let n = batch.num_rows();
    let l = Lanes::new(&cols, n);
    let mut answered = 0;
    for i in 0..n {
        let (o, warned) = lanes::general(&cols, i, i as u64 + 1, i as u64);
        let want = written(o, &warned);
        if let Some(got) = l.record(&cols, i, i as u64 + 1, i as u64) {
            answered += 1;
            let got = written(got, &[]);
            if got != want {
                return Err(format!("row {i}: lanes {got}, record {want}"));
            }
        }
    }
    Ok((answered, n))
}

#[test]
fn lanes_answer_every_row_of_a_usual_batch() {
    let kinds: Vec<Kind> = Field::ALL.iter().map(|&f| natural(f, 0).0).collect();
    let rows: Vec<Vec<Lit>> = (0..24)
        .map(|r| Field::ALL.iter().map(|&f| natural(f, r).1).collect())
        .collect();
    let (answered, n) = lanes_against_record(&generated(&kinds, &rows)).unwrap();
    assert_eq!(answered, n);
    // Plain text columns (files whose text is not read as dictionaries) are left to the
    // record, as are numbers written as text.
    let plain: Vec<Kind> = kinds
        .iter()
        .map(|k| match k {
            Kind::Dict => Kind::Plain,
            k => *k,
        })
        .collect();
    let (answered, _) = lanes_against_record(&generated(&plain, &rows)).unwrap();
    // Only the NODATA rows, skipped on their status alone.
    let nodata = rows
        .iter()
        .filter(|r| matches!(r[Field::LogStatus as usize], Lit::Text("NODATA")))
        .count();
    assert!(nodata > 0);
    assert_eq!(answered, nodata);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Every row the lanes answer, they answer as `flowlog::record` does: whatever the
    /// columns' kinds, with good values of each field and some cells swapped for any form.
    #[test]
    fn lanes_read_rows_as_the_record_does(
        kinds in proptest::collection::vec(0..10u8, Field::ALL.len()),
        rows in 1..40usize,
        swaps in proptest::collection::vec(
            (0..40usize, 0..Field::ALL.len(), 0..(TEXTS.len() + NUMS.len() + 1)),
            0..30,
        ),
    ) {
        // Mostly each field's natural column, sometimes another kind or none.
        let kinds: Vec<Kind> = Field::ALL
            .iter()
            .zip(&kinds)
            .map(|(&f, &k)| match k {
                0 => Kind::Missing,
                1 => Kind::Dict,
                2 => Kind::Plain,
                3 => Kind::Int64,
                4 => Kind::Int32,
                _ => natural(f, 0).0,
            })
            .collect();
        let mut cells: Vec<Vec<Lit>> = (0..rows)
            .map(|r| Field::ALL.iter().map(|&f| natural(f, r).1).collect())
            .collect();
        for (r, f, v) in swaps {
            let lit = match v {
                v if v < TEXTS.len() => Lit::Text(TEXTS[v]),
                v if v < TEXTS.len() + NUMS.len() => Lit::Num(NUMS[v - TEXTS.len()]),
                _ => Lit::Null,
            };
            if r < rows {
                cells[r][f] = lit;
            }
        }
        let batch = generated(&kinds, &cells);
        if let Err(e) = lanes_against_record(&batch) {
            proptest::prop_assert!(false, "{e}\nkinds {kinds:?}");
        }
    }
}

/// Two rows with a `UInt64` source port and byte count (`sport`, `bytes` per row), as a
/// Parquet file of one row group.
fn unsigned_file(tcp_flags: [i64; 2], sport: [u64; 2], bytes: [u64; 2]) -> bytes::Bytes {
    let text = |v: [&str; 2]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
    let b = RecordBatch::try_from_iter([
        ("srcaddr", text(["10.0.0.1", "10.0.0.1"])),
        ("dstaddr", text(["10.0.0.2", "10.0.0.2"])),
        (
            "protocol",
            Arc::new(Int64Array::from(vec![6, 6])) as ArrayRef,
        ),
        (
            "srcport",
            Arc::new(arrow_array::UInt64Array::from(sport.to_vec())),
        ),
        ("dstport", Arc::new(Int64Array::from(vec![443, 443]))),
        (
            "bytes",
            Arc::new(arrow_array::UInt64Array::from(bytes.to_vec())),
        ),
        ("tcp_flags", Arc::new(Int64Array::from(tcp_flags.to_vec()))),
    ])
    .unwrap();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    bytes::Bytes::from(out)
}

/// Every record of `bytes` and the reader's summary.
fn read_file(bytes: bytes::Bytes) -> (Vec<flowlog::Record>, Summary) {
    let mut reader = open_bytes(bytes).unwrap();
    let recs = reader.by_ref().map(|r| r.unwrap()).collect();
    (recs, reader.summary().clone())
}

#[test]
fn regression_uint64_above_i64_max_is_read_exactly_or_out_of_range_never_clamped() {
    let big = i64::MAX as u64 + 5;
    // A port that large is out of range; a byte count that large is the count.
    let (recs, s) = read_file(unsigned_file([2, 2], [40000, big], [big, 60]));
    assert_eq!(recs.len(), 1, "{s}");
    assert_eq!(recs[0].bytes, big);
    assert_eq!(s.skipped["malformed flow-log row"], 1);
    assert_eq!(
        s.examples,
        [format!("row 2: row group 0: srcport {big} is out of range")]
    );
    // Values that fit are read as before (the column is then widened at once).
    let (recs, s) = read_file(unsigned_file([2, 2], [40000, 40001], [1, 2]));
    assert_eq!(recs.len(), 2, "{s}");
    assert_eq!(recs[1].header.src_port(), 40001);
}

#[test]
fn regression_parquet_tcp_flags_above_255_are_out_of_range_not_cut() {
    let (recs, s) = read_file(unsigned_file([19, 258], [1, 2], [1, 2]));
    assert_eq!(recs.len(), 1, "{s}");
    assert_eq!(recs[0].tcp_flags, Some(19));
    assert_eq!(
        s.examples,
        ["row 2: row group 0: tcp-flags 258 is out of range"]
    );
}

#[test]
fn regression_strict_parquet_errors_name_the_row_not_a_line() {
    let mut reader = open_bytes(unsigned_file([2, 258], [1, 2], [1, 2]))
        .unwrap()
        .strict(true);
    assert!(reader.next().unwrap().is_ok());
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(
        err,
        FlowError::Row {
            row: 2,
            group: 0,
            why: "tcp-flags 258 is out of range".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "row 2: row group 0: tcp-flags 258 is out of range"
    );
    assert!(reader.next().is_none());
}

#[test]
fn regression_guarded_panics_become_errors_and_leave_the_flag_down() {
    let err =
        guarded(|| -> u8 { panic!("column start and length should not be negative") }).unwrap_err();
    assert_eq!(
        err,
        "the Parquet decoder failed (column start and length should not be negative)"
    );
    assert!(!GUARDED.with(std::cell::Cell::get));
    // Nested sections restore the outer state.
    assert_eq!(guarded(|| guarded(|| 1).unwrap()), Ok(1));
    assert!(!GUARDED.with(std::cell::Cell::get));
}

/// The second of the first row of [`timed_file`].
const T0: i64 = 1_700_000_000;

/// 50 rows 100 s apart (`start` at `T0 + 100 i`, `end` 60 s later) in row groups of 10,
/// row 6 (in group 0) with a source that is no address; `start` as `Int64` (nullable, a
/// null at `null_at` when given) or as text, statistics written or not.
fn timed_file(text_start: bool, statistics: bool, null_at: Option<usize>) -> bytes::Bytes {
    let n = 50;
    let src: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|i| {
        if i == 5 {
            "not-an-address"
        } else {
            "10.0.0.1"
        }
    })));
    let starts = (0..n).map(|i| (Some(i) != null_at).then_some(T0 + 100 * i as i64));
    let start: ArrayRef = if text_start {
        Arc::new(StringArray::from_iter(
            starts.map(|v| v.map(|v| v.to_string())),
        ))
    } else {
        Arc::new(Int64Array::from_iter(starts))
    };
    let b = RecordBatch::try_from_iter([
        ("srcaddr", src),
        (
            "dstaddr",
            Arc::new(StringArray::from_iter_values((0..n).map(|_| "10.0.0.2"))) as ArrayRef,
        ),
        ("protocol", Arc::new(Int64Array::from_value(6, n))),
        (
            "srcport",
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|i| 40000 + i as i64),
            )),
        ),
        ("dstport", Arc::new(Int64Array::from_value(443, n))),
        ("start", start),
        (
            "end",
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|i| T0 + 100 * i as i64 + 60),
            )),
        ),
    ])
    .unwrap();
    let level = if statistics {
        parquet::file::properties::EnabledStatistics::Chunk
    } else {
        parquet::file::properties::EnabledStatistics::None
    };
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(10))
        .set_statistics_enabled(level)
        .build();
    written_file(&b, props)
}

/// Rows 25 to 38 (0-based) of [`timed_file`] meet this window: groups 0, 1 and 4 lie
/// wholly outside it.
fn window() -> Window {
    Window {
        since: Some((T0 + 100 * 25) as u64),
        until: Some((T0 + 100 * 39) as u64),
    }
}

/// A record's index, line, start and end.
type Placed = (u64, u64, u64, u64);

/// The records, their places and the summary of `bytes` read through `window`.
fn read_window(bytes: bytes::Bytes, window: Window) -> (Vec<Placed>, Summary, Vec<bool>) {
    let mut reader = open_bytes(bytes).unwrap().window(window);
    let recs = reader
        .by_ref()
        .map(|r| r.unwrap())
        .map(|r| (r.index, r.line, r.start, r.end))
        .collect();
    let outside = reader.outside_groups().to_vec();
    (recs, reader.summary().clone(), outside)
}

/// Row groups whose statistics place every row outside the window are not read: their
/// rows are counted outside it (a malformed one among them too), and the rows read keep
/// their places and numbers.
#[test]
fn row_groups_outside_the_window_are_left_unread() {
    let bytes = timed_file(false, true, None);
    let (all, all_summary, none) = read_window(bytes.clone(), Window::default());
    assert_eq!(none, [false; 5]);
    assert_eq!(all.len(), 49, "{all_summary}");
    assert_eq!(all_summary.skipped["malformed flow-log row"], 1);
    let (recs, s, outside) = read_window(bytes, window());
    assert_eq!(outside, [true, true, false, false, true]);
    // The rows of groups 2 and 3, numbered as when every group is read.
    let expected: Vec<_> = all
        .iter()
        .copied()
        .filter(|r| (20..40).contains(&r.0))
        .collect();
    assert_eq!(recs, expected);
    assert_eq!((recs[0].0, recs[0].1), (20, 21));
    assert_eq!(s.records, 50, "{s}");
    assert_eq!(s.decoded, 20, "{s}");
    assert_eq!(s.skipped[OUTSIDE_WINDOW], 30, "{s}");
    // The malformed row lies in a group left unread.
    assert!(!s.skipped.contains_key("malformed flow-log row"), "{s}");
    assert!(s.examples.is_empty(), "{s}");
    // Open ends.
    let since = Window {
        since: window().since,
        until: None,
    };
    assert_eq!(
        read_window(timed_file(false, true, None), since).2,
        [true, true, false, false, false]
    );
    let until = Window {
        since: None,
        until: window().until,
    };
    assert_eq!(
        read_window(timed_file(false, true, None), until).2,
        [false, false, false, false, true]
    );
}

/// A group left unread is not decoded: its pages may be damaged.
#[test]
fn a_damaged_row_group_outside_the_window_is_not_read() {
    let mut bytes = timed_file(false, true, None).to_vec();
    let meta =
        ArrowReaderMetadata::load(&bytes::Bytes::from(bytes.clone()), Default::default()).unwrap();
    // Every page of group 0.
    for c in meta.metadata().row_group(0).columns() {
        let (at, len) = c.byte_range();
        for b in &mut bytes[at as usize..(at + len) as usize] {
            *b = 0xff;
        }
    }
    let bytes = bytes::Bytes::from(bytes);
    let (_, s, _) = read_window(bytes.clone(), Window::default());
    assert_eq!(s.skipped["unreadable Parquet row group"], 10, "{s}");
    let (recs, s, _) = read_window(bytes, window());
    assert_eq!(recs.len(), 20, "{s}");
    assert!(
        !s.skipped.contains_key("unreadable Parquet row group"),
        "{s}"
    );
    assert_eq!(s.skipped[OUTSIDE_WINDOW], 30, "{s}");
}

/// Statistics that cannot place a group wholly outside leave it to be read: none written,
/// a text `start`, a null `start` (it reads 0: inside any `until`).
#[test]
fn groups_are_read_where_statistics_cannot_say() {
    for (bytes, expected, meeting) in [
        (timed_file(false, false, None), [false; 5], 14),
        (timed_file(true, true, None), [false; 5], 14),
        // A null start in group 4 reads 0, before `until`: the row meets the window (its
        // end is after `since`), so the group is read.
        (
            timed_file(false, true, Some(45)),
            [true, true, false, false, false],
            15,
        ),
        // Group 0's null start is before `since` anyway.
        (
            timed_file(false, true, Some(3)),
            [true, true, false, false, true],
            14,
        ),
    ] {
        let (recs, s, outside) = read_window(bytes, window());
        assert_eq!(outside, expected, "{s}");
        // The window keeps the same records of those read (the caller filters them).
        let kept = recs.iter().filter(|r| window().meets(r.2, r.3)).count();
        assert_eq!(kept, meeting, "{s}");
        assert_eq!(s.records, 50, "{s}");
    }
}

/// Integer columns of a dictionary type (as a writer's Arrow schema may keep them) read as
/// the plain columns do: `start` as a dictionary of `Int64`, `bytes` of `UInt64` (one value
/// above `i64::MAX`, read exactly), `dstport` a dictionary of no entry (every row null).
#[test]
fn regression_dictionary_integer_columns_read_as_plain_ones() {
    use arrow_array::types::UInt64Type;
    let big = i64::MAX as u64 + 9;
    let starts = [T0, T0 + 1, T0, T0 + 2];
    let bytes_ = [10u64, big, 10, 20];
    let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; 4])) };
    let plain = |dictionary: bool| -> bytes::Bytes {
        let (start, bytes_col, dstport): (ArrayRef, ArrayRef, ArrayRef) = if dictionary {
            (
                Arc::new(
                    DictionaryArray::<Int32Type>::try_new(
                        arrow_array::Int32Array::from(vec![0, 1, 0, 2]),
                        Arc::new(Int64Array::from(vec![T0, T0 + 1, T0 + 2])),
                    )
                    .unwrap(),
                ),
                Arc::new(
                    DictionaryArray::<Int32Type>::try_new(
                        arrow_array::Int32Array::from(vec![0, 1, 0, 2]),
                        Arc::new(arrow_array::PrimitiveArray::<UInt64Type>::from(vec![
                            10, big, 20,
                        ])),
                    )
                    .unwrap(),
                ),
                Arc::new(
                    DictionaryArray::<Int32Type>::try_new(
                        arrow_array::Int32Array::from(vec![None::<i32>; 4]),
                        Arc::new(Int64Array::from(Vec::<i64>::new())),
                    )
                    .unwrap(),
                ),
            )
        } else {
            (
                Arc::new(Int64Array::from(starts.to_vec())),
                Arc::new(arrow_array::UInt64Array::from(bytes_.to_vec())),
                Arc::new(Int64Array::from(vec![None::<i64>; 4])),
            )
        };
        let b = RecordBatch::try_from_iter([
            ("srcaddr", text("10.0.0.1")),
            ("dstaddr", text("10.0.0.2")),
            (
                "protocol",
                Arc::new(Int64Array::from(vec![17; 4])) as ArrayRef,
            ),
            ("srcport", Arc::new(Int64Array::from(vec![5353; 4]))),
            ("dstport", dstport),
            ("bytes", bytes_col),
            ("start", start),
        ])
        .unwrap();
        written_file(&b, WriterProperties::builder().build())
    };
    let meta = ArrowReaderMetadata::load(&plain(true), Default::default()).unwrap();
    for c in ["start", "bytes", "dstport"] {
        let t = meta
            .schema()
            .field_with_name(c)
            .unwrap()
            .data_type()
            .clone();
        assert!(matches!(t, DataType::Dictionary(..)), "{c}: {t}");
    }
    let (dict, s) = read_file(plain(true));
    let (as_plain, p) = read_file(plain(false));
    assert_eq!(s, p);
    assert_eq!(dict.len(), 4, "{s}");
    assert_eq!(
        dict.iter().map(|r| (r.start, r.bytes)).collect::<Vec<_>>(),
        starts
            .iter()
            .zip(bytes_)
            .map(|(&t, b)| (t as u64, b))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        format!("{dict:?}"),
        format!("{as_plain:?}"),
        "the same records either way"
    );
}
