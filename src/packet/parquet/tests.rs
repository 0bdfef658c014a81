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
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, b.schema(), Some(props)).unwrap();
    w.write(&b).unwrap();
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
