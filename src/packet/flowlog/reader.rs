//! The flow-log [`Reader`]: lines, the format told from the first line with content, CSV
//! quoting, header lines, and malformed and over-long lines counted.

use std::borrow::Cow;
use std::io::BufRead;

use serde_json::Value;

use super::fields::{Json, Text};
use super::{
    canonical, record, FlowError, Format, Layout, Outcome, Record, GIVE_UP_AFTER, KNOWN, MAX_LINE,
    SKIP_NO_ADDRESSES,
};
use crate::packet::Summary;

/// A line starting with `#`, counted and skipped.
pub(crate) const SKIP_COMMENT: &str = "comment line (#)";
/// A line equal to the header line (files concatenated with `cat`).
pub(crate) const SKIP_REPEATED_HEADER: &str = "repeated header line";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// Not known yet (no line with content so far).
    Unknown,
    Json,
    /// AWS space-separated, by this layout; `header` is the header line's words, if any.
    Text {
        layout: Layout,
        header: Option<Vec<String>>,
    },
    /// Comma-separated with this layout and header.
    Csv {
        layout: Layout,
        header: Vec<String>,
    },
}

/// One line as read: text within [`MAX_LINE`], or a longer line (its first bytes held).
enum Line {
    Eof,
    Text,
    TooLong,
}

/// Splits one CSV line (RFC 4180 quoting, no embedded line breaks).
fn split_csv(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                match line[j..].find('"') {
                    None => return Err("unterminated quoted CSV field".into()),
                    Some(k) => {
                        s.push_str(&line[j..j + k]);
                        j += k + 1;
                        if b.get(j) == Some(&b'"') {
                            s.push('"');
                            j += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            out.push(Cow::Owned(s));
            match b.get(j) {
                None => return Ok(out),
                Some(b',') => i = j + 1,
                Some(_) => return Err("text after a quoted CSV field".into()),
            }
        } else {
            match line[i..].find(',') {
                None => {
                    out.push(Cow::Borrowed(&line[i..]));
                    return Ok(out);
                }
                Some(k) => {
                    out.push(Cow::Borrowed(&line[i..i + k]));
                    i += k + 1;
                }
            }
        }
    }
}

/// Reads flow-log records from lines.
pub struct Reader<R> {
    input: R,
    mode: Mode,
    strict: bool,
    line: u64,
    index: u64,
    consumed: u64,
    buf: Vec<u8>,
    summary: Summary,
    /// Malformed or over-long lines while nothing usable has been read.
    bad_start: u64,
    /// The first of them: what a [`FlowError::NotFlowLog`] quotes, and in strict mode the
    /// error returned once something shows the input is a flow log after all.
    first_bad: Option<FlowError>,
    /// Something (a record, a header, a NODATA line) showed this is a flow log.
    recognised: bool,
    /// The rest of an over-long line is still to be skipped.
    skipping: bool,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    /// A reader of JSON lines (`json`) or text lines (AWS space-separated, or CSV with a
    /// header line).
    pub fn new(input: R, json: bool) -> Reader<R> {
        Reader {
            input,
            mode: if json { Mode::Json } else { Mode::Unknown },
            strict: false,
            line: 0,
            index: 0,
            consumed: 0,
            buf: Vec::new(),
            summary: Summary::default(),
            bad_start: 0,
            first_bad: None,
            recognised: false,
            skipping: false,
            done: false,
        }
    }

    /// In strict mode a malformed line is an error, not a counted skip.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// `aws-flow-log`, `aliyun-flow-log` or `csv-flow-log`.
    pub fn format(&self) -> &'static str {
        match self.mode {
            Mode::Json => "aliyun-flow-log",
            Mode::Csv { .. } => "csv-flow-log",
            _ => "aws-flow-log",
        }
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Consumes the reader, returning its summary.
    pub fn into_summary(self) -> Summary {
        self.summary
    }

    /// Reads one line into `buf` (without its end), holding at most [`MAX_LINE`] bytes: a
    /// longer line is reported as soon as it passes the limit, and its rest is skipped by
    /// the next call.
    fn read_line(&mut self) -> std::io::Result<Line> {
        self.buf.clear();
        while self.skipping {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                self.skipping = false;
                break;
            }
            let take = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.skipping = false;
                    i + 1
                }
                None => chunk.len(),
            };
            self.input.consume(take);
            self.consumed += take as u64;
        }
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return Ok(if self.buf.is_empty() {
                    Line::Eof
                } else {
                    Line::Text
                });
            }
            let newline = chunk.iter().position(|&b| b == b'\n');
            let len = newline.unwrap_or(chunk.len());
            if self.buf.len() + len > MAX_LINE {
                let room = MAX_LINE - self.buf.len();
                self.buf.extend_from_slice(&chunk[..room]);
                let take = newline.map_or(chunk.len(), |i| i + 1);
                self.skipping = newline.is_none();
                self.input.consume(take);
                self.consumed += take as u64;
                return Ok(Line::TooLong);
            }
            self.buf.extend_from_slice(&chunk[..len]);
            let take = newline.map_or(len, |i| i + 1);
            self.input.consume(take);
            self.consumed += take as u64;
            if newline.is_some() {
                return Ok(Line::Text);
            }
        }
    }

    fn header_layout(names: &[String]) -> bool {
        let known = names.iter().filter(|n| KNOWN.contains(&n.as_str())).count();
        known >= 3 && names.iter().any(|n| n == "srcaddr" || n == "pkt-srcaddr")
    }

    /// The outcome of one line with content; `Ok(None)` for a line that holds no record.
    fn line(&mut self, text: &str) -> Result<Option<Outcome>, FlowError> {
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.starts_with('#') {
            return Ok(Some(Outcome::Skip(SKIP_COMMENT)));
        }
        let (line, index) = (self.line, self.index);
        let summary = &mut self.summary;
        let mut warn = |w: &'static str| {
            *summary.warnings.entry(w.to_string()).or_default() += 1;
            summary.example(format!("line {line}: {w}"));
        };
        if self.mode == Mode::Unknown {
            if text.starts_with('{') {
                self.mode = Mode::Json;
            } else if text.contains(',') {
                let names: Vec<String> = match split_csv(text) {
                    Ok(v) => v.iter().map(|s| canonical(s)).collect(),
                    Err(_) => Vec::new(),
                };
                if !Self::header_layout(&names) {
                    return Ok(Some(Outcome::Malformed(
                        "comma-separated line that is not a header naming flow-log fields".into(),
                    )));
                }
                let layout = Layout::new(&names).map_err(|why| FlowError::Header { line, why })?;
                self.mode = Mode::Csv {
                    layout,
                    header: names,
                };
                self.recognised = true;
                return Ok(None);
            } else {
                let names: Vec<String> = text.split_whitespace().map(canonical).collect();
                if Self::header_layout(&names) {
                    let layout =
                        Layout::new(&names).map_err(|why| FlowError::Header { line, why })?;
                    self.mode = Mode::Text {
                        layout,
                        header: Some(names),
                    };
                    self.recognised = true;
                    return Ok(None);
                }
                self.mode = Mode::Text {
                    layout: Layout::default_v2(),
                    header: None,
                };
            }
        }
        Ok(Some(match &self.mode {
            Mode::Unknown => return Ok(None),
            Mode::Json => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(o)) => match Json::new(&o) {
                    Ok(fields) => record(&fields, Format::Aliyun, line, index, &mut warn),
                    Err(why) => Outcome::Malformed(why),
                },
                Ok(_) => Outcome::Malformed("not a JSON object".into()),
                Err(e) => Outcome::Malformed(format!("not JSON: {e}")),
            },
            Mode::Csv { layout, header } => {
                let values = match split_csv(text) {
                    Ok(v) => v,
                    Err(why) => return Ok(Some(Outcome::Malformed(why))),
                };
                if values.len() == header.len()
                    && values.iter().zip(header).all(|(v, h)| canonical(v) == *h)
                {
                    return Ok(Some(Outcome::Skip(SKIP_REPEATED_HEADER)));
                }
                if values.len() != layout.columns {
                    Outcome::Malformed(format!(
                        "{} fields, the header has {}",
                        values.len(),
                        layout.columns
                    ))
                } else {
                    let values: Vec<&str> = values.iter().map(|v| v.as_ref()).collect();
                    record(
                        &Text {
                            layout,
                            values: &values,
                        },
                        Format::Csv,
                        line,
                        index,
                        &mut warn,
                    )
                }
            }
            Mode::Text { layout, header } => {
                let words: Vec<&str> = text.split_whitespace().collect();
                if let Some(h) = header {
                    if words.len() == h.len()
                        && words.iter().zip(h).all(|(w, n)| canonical(w) == *n)
                    {
                        return Ok(Some(Outcome::Skip(SKIP_REPEATED_HEADER)));
                    }
                }
                if words.len() != layout.columns {
                    Outcome::Malformed(format!(
                        "{} fields, the {} format has {}",
                        words.len(),
                        if header.is_none() {
                            "default (v2)"
                        } else {
                            "header's"
                        },
                        layout.columns
                    ))
                } else {
                    record(
                        &Text {
                            layout,
                            values: &words,
                        },
                        if header.is_none() {
                            Format::AwsDefault
                        } else {
                            Format::AwsCustom
                        },
                        line,
                        index,
                        &mut warn,
                    )
                }
            }
        }))
    }

    /// Counts a malformed (or over-long) line; gives up when nothing usable came first.
    fn bad(&mut self, reason: &'static str, why: String) -> Option<FlowError> {
        let err = FlowError::Line {
            line: self.line,
            why,
        };
        if !self.recognised {
            // Counted even in strict mode: the line is held, not yet the error (it is
            // once something shows a flow log; if nothing does, the input is not one).
            self.bad_start += 1;
            let first = self
                .first_bad
                .get_or_insert_with(|| err.clone())
                .to_string();
            self.summary.skip(&reason);
            self.summary.example(err.to_string());
            if self.bad_start >= GIVE_UP_AFTER || self.buf.contains(&0) {
                return Some(FlowError::NotFlowLog {
                    line: self.line,
                    first,
                });
            }
            return None;
        }
        if self.strict {
            return Some(err);
        }
        self.summary.skip(&reason);
        self.summary.example(err.to_string());
        None
    }
}

impl<R> Reader<R> {
    /// Strict mode: the malformed line held while nothing showed this is a flow log, now
    /// that something has (reading ends with it).
    fn held(&mut self) -> Option<FlowError> {
        if !(self.strict && self.recognised) {
            return None;
        }
        let e = self.first_bad.take()?;
        self.done = true;
        Some(e)
    }

    /// At the end of the input: lines with content of which none showed a flow log make
    /// an input that is not one (an input without such lines is an empty flow log).
    fn not_flow_log_at_end(&mut self) -> Option<FlowError> {
        if self.recognised || self.summary.records == 0 {
            return None;
        }
        let first = match &self.first_bad {
            Some(e) => e.to_string(),
            None => {
                let reasons: Vec<String> = self
                    .summary
                    .skipped
                    .iter()
                    .map(|(why, n)| format!("{n} {why}"))
                    .collect();
                reasons.join(", ")
            }
        };
        Some(FlowError::NotFlowLog {
            line: self.line.saturating_sub(1),
            first,
        })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Record, FlowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_boxed().map(|r| r.map(|b| *b))
    }
}

impl<R: BufRead> Reader<R> {
    /// The next record as the parser made it, boxed (what an [`Item`](crate::packet::Item)
    /// holds: no copy out of the box and into a new one).
    pub(crate) fn next_boxed(&mut self) -> Option<Result<Box<Record>, FlowError>> {
        while !self.done {
            let read = match self.read_line() {
                Ok(r) => r,
                Err(e) => {
                    self.done = true;
                    return Some(Err(FlowError::Read {
                        line: self.line,
                        why: e.to_string(),
                    }));
                }
            };
            self.line += 1;
            let outcome = match read {
                Line::Eof => {
                    self.done = true;
                    return self.not_flow_log_at_end().map(Err);
                }
                Line::TooLong => {
                    self.summary.records += 1;
                    self.index += 1;
                    let why = format!("line longer than {MAX_LINE} bytes");
                    if let Some(e) = self.bad("over-long line", why) {
                        self.done = true;
                        return Some(Err(e));
                    }
                    continue;
                }
                Line::Text => {
                    let buf = std::mem::take(&mut self.buf);
                    let outcome = match std::str::from_utf8(&buf) {
                        Ok(text) => self.line(text),
                        Err(e) => Ok(Some(Outcome::Malformed(format!(
                            "not UTF-8 text (byte {} of the line)",
                            e.valid_up_to()
                        )))),
                    };
                    self.buf = buf;
                    match outcome {
                        Ok(Some(o)) => o,
                        Ok(None) => {
                            if let Some(e) = self.held() {
                                return Some(Err(e));
                            }
                            continue;
                        }
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
            };
            self.summary.records += 1;
            self.index += 1;
            match outcome {
                Outcome::Record(r) => {
                    self.recognised = true;
                    if let Some(e) = self.held() {
                        return Some(Err(e));
                    }
                    self.summary.decoded += 1;
                    return Some(Ok(r));
                }
                Outcome::Skip(why) => {
                    // A comment or a record without addresses shows nothing of a flow log.
                    if why != SKIP_COMMENT && why != SKIP_NO_ADDRESSES {
                        self.recognised = true;
                        if let Some(e) = self.held() {
                            return Some(Err(e));
                        }
                    }
                    self.summary.skip(&why);
                }
                Outcome::Malformed(why) => {
                    if let Some(e) = self.bad("malformed flow-log line", why) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Direction};
    use crate::packet::flowlog::record::{WARN_NO_PORTS, WARN_START_AFTER_END, WARN_VERSION};

    fn read(text: &str, json: bool) -> (Vec<Record>, Summary) {
        let mut r = Reader::new(text.as_bytes(), json);
        let recs: Vec<Record> = r.by_ref().map(|x| x.unwrap()).collect();
        (recs, r.into_summary())
    }

    #[test]
    fn aws_default_v2_with_nodata_and_dashes() {
        let text = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n\
                    2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n\
                    2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK\n";
        let (recs, s) = read(text, false);
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[0].header.to_string(),
            "tcp 172.31.16.139:20641 -> 172.31.16.21:22"
        );
        assert_eq!(
            recs[0].eni.as_ref().unwrap().as_str(),
            "eni-1235b8ca123456789"
        );
        assert_eq!((recs[0].packets, recs[0].bytes), (20, 4249));
        assert_eq!(recs[1].action, Some(Action::Drop));
        assert_eq!(recs[1].index, 2);
        assert_eq!(s.skipped.len(), 1);
        assert_eq!(s.records, 3);
    }

    #[test]
    fn custom_header_with_direction_and_pkt_addresses() {
        let text = "version interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol flow-direction action log-status\n\
                    5 eni-a 10.0.0.5 10.0.0.9 203.0.113.1 10.0.0.9 443 51000 6 ingress ACCEPT OK\n";
        let (recs, _) = read(text, false);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].format, Format::AwsCustom);
        assert_eq!(recs[0].direction, Some(Direction::Ingress));
        assert_eq!(recs[0].header.src().to_string(), "203.0.113.1");
    }

    #[test]
    fn every_current_aws_field_is_read_by_name() {
        let names = KNOWN[..42].join(" ");
        let mut values: Vec<String> = KNOWN[..42].iter().map(|_| "-".to_string()).collect();
        let set = |values: &mut Vec<String>, name: &str, v: &str| {
            let i = KNOWN.iter().position(|n| *n == name).unwrap();
            values[i] = v.into();
        };
        for (n, v) in [
            ("version", "8"),
            ("interface-id", "eni-a"),
            ("srcaddr", "10.0.0.5"),
            ("dstaddr", "10.0.0.9"),
            ("srcport", "443"),
            ("dstport", "51000"),
            ("protocol", "6"),
            ("action", "REJECT"),
            ("log-status", "OK"),
            ("flow-direction", "egress"),
            ("traffic-path", "8"),
            ("pkt-dst-aws-service", "S3"),
            ("ecs-task-id", "abc"),
            ("reject-reason", "BPA"),
            ("start", "100"),
            ("end", "160"),
        ] {
            set(&mut values, n, v);
        }
        let text = format!("{names}\n{}\n", values.join(" "));
        let (recs, s) = read(&text, false);
        assert_eq!(recs.len(), 1, "{s}");
        assert_eq!(recs[0].reject_reason.as_deref(), Some("BPA"));
        assert_eq!(recs[0].direction, Some(Direction::Egress));
        assert!(s.warnings.is_empty(), "{s}");
    }

    #[test]
    fn malformed_lines_name_their_line_number() {
        let text = "2 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 0 1 ACCEPT OK\n\n2 1 eni-a 10.0.0.1\n2 1 eni-a 10.0.0.1 10.0.0.2 x 2 6 1 1 0 1 ACCEPT OK\n";
        let (recs, s) = read(text, false);
        assert_eq!(recs.len(), 1);
        assert_eq!(s.skipped["malformed flow-log line"], 2);
        assert!(s.examples[0].starts_with("line 3:"), "{:?}", s.examples);
        assert!(
            s.examples[1].starts_with("line 4: srcport 'x'"),
            "{:?}",
            s.examples
        );
        let mut strict = Reader::new(text.as_bytes(), false).strict(true);
        assert!(strict.next().unwrap().is_ok());
        assert_eq!(
            strict.next().unwrap().unwrap_err(),
            FlowError::Line {
                line: 3,
                why: "4 fields, the default (v2) format has 14".into()
            }
        );
    }

    #[test]
    fn aliyun_json_lines() {
        let text = r#"{"__topic__":"flow_log","version":"1","eni-id":"eni-bp1","srcaddr":"203.0.113.5","srcport":"51514","dstaddr":"192.168.1.10","dstport":"22","protocol":"6","direction":"in","packets":"10","bytes":"840","start":"1718000000","end":"1718000060","log-status":"OK","action":"ACCEPT","tcp-flags":"18"}
{"eni-id":"eni-bp1","srcaddr":"192.168.1.10","srcport":22,"dstaddr":"203.0.113.5","dstport":51514,"protocol":6,"direction":"out","log-status":"OK","action":"REJECT"}
not json
"#;
        let (recs, s) = read(text, true);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].direction, Some(Direction::Ingress));
        assert_eq!(recs[0].tcp_flags, Some(18));
        assert_eq!(recs[1].direction, Some(Direction::Egress));
        assert_eq!(recs[1].action, Some(Action::Drop));
        assert!(
            s.examples[0].starts_with("line 3: not JSON"),
            "{:?}",
            s.examples
        );
    }

    #[test]
    fn aliyun_csv_with_quotes_and_repeated_header() {
        let text = "__topic__,version,eni-id,srcaddr,srcport,dstaddr,dstport,protocol,direction,packets,bytes,start,end,log-status,action,traffic_path\n\
                    flow_log,1,eni-bp1,203.0.113.5,51514,192.168.1.10,22,6,in,10,840,1718000000,1718000060,OK,ACCEPT,\"0\"\n\
                    __topic__,version,eni-id,srcaddr,srcport,dstaddr,dstport,protocol,direction,packets,bytes,start,end,log-status,action,traffic_path\n\
                    flow_log,1,eni-bp1,\"192.168.1.10\",22,203.0.113.5,51514,6,out,1,1,1718000000,1718000060,OK,REJECT,0\n\
                    flow_log,1,eni-bp1,192.168.1.10\n";
        let (recs, s) = read(text, false);
        assert_eq!(recs.len(), 2, "{s}");
        assert_eq!(recs[0].format, Format::Csv);
        assert_eq!(recs[1].header.src().to_string(), "192.168.1.10");
        assert_eq!(s.skipped["repeated header line"], 1);
        assert!(s.examples[0].starts_with("line 5: 4 fields"), "{s}");
    }

    #[test]
    fn regression_header_with_a_repeated_field_is_rejected() {
        let text = "version srcaddr dstaddr srcaddr srcport dstport protocol\n5 10.0.0.1 10.0.0.2 10.0.0.3 1 2 6\n";
        let err = Reader::new(text.as_bytes(), false)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err,
            FlowError::Header {
                line: 1,
                why: "field 'srcaddr' is named twice (columns 2 and 4)".into()
            }
        );
        let csv = "srcaddr,dstaddr,protocol,src_addr,srcaddr\n";
        let err = Reader::new(csv.as_bytes(), false)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, FlowError::Header { line: 1, .. }), "{err}");
    }

    #[test]
    fn regression_new_version_start_after_end_and_null_ports_warn_and_count() {
        let text = r#"{"version":"2","eni-id":"eni-1","srcaddr":"10.0.0.1","dstaddr":"10.0.0.2","srcport":null,"dstport":"22","protocol":"6","direction":"in","start":"200","end":"100","log-status":"OK","action":"ACCEPT"}
"#;
        let (recs, s) = read(text, true);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].header.src_port(), 0);
        assert_eq!(s.warnings[WARN_VERSION], 1);
        assert_eq!(s.warnings[WARN_START_AFTER_END], 1);
        assert_eq!(s.warnings[WARN_NO_PORTS], 1);
        assert!(s.examples.iter().all(|e| e.starts_with("line 1: ")), "{s}");
        let aws = "11 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 0 1 ACCEPT OK\n";
        let (_, s) = read(aws, false);
        assert_eq!(s.warnings[WARN_VERSION], 1);
    }

    #[test]
    fn regression_over_long_lines_are_counted_and_skipped_unheld() {
        let good = "2 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 0 1 ACCEPT OK\n";
        let long = format!("{good}{}\n{good}", "x".repeat(MAX_LINE + 10));
        let mut r = Reader::new(
            std::io::BufReader::with_capacity(4096, long.as_bytes()),
            false,
        );
        let recs: Vec<Record> = r.by_ref().map(|x| x.unwrap()).collect();
        assert_eq!(recs.len(), 2);
        assert!(
            r.buf.capacity() <= 2 * (MAX_LINE + 4096),
            "{}",
            r.buf.capacity()
        );
        assert_eq!(r.summary().skipped["over-long line"], 1);
        assert_eq!(recs[1].line, 3);
    }

    #[test]
    fn regression_text_that_is_not_a_flow_log_gives_up_early() {
        let text = "hello world\n".repeat(10_000);
        let mut r = Reader::new(text.as_bytes(), false);
        let err = r.next().unwrap().unwrap_err();
        assert!(
            matches!(err, FlowError::NotFlowLog { line, .. } if line == GIVE_UP_AFTER),
            "{err}"
        );
        assert!(r.next().is_none());
        // An over-long line of zeros first: given up at once.
        let zeros = vec![0u8; MAX_LINE * 3];
        let mut r = Reader::new(std::io::BufReader::new(&zeros[..]), false);
        assert!(matches!(
            r.next().unwrap().unwrap_err(),
            FlowError::NotFlowLog { line: 1, .. }
        ));
    }

    /// The error reading `text` ends with, if any, and the records before it.
    fn error_of(text: &str, json: bool, strict: bool) -> (Vec<Record>, Option<FlowError>) {
        let mut recs = Vec::new();
        for r in Reader::new(text.as_bytes(), json).strict(strict) {
            match r {
                Ok(r) => recs.push(r),
                Err(e) => return (recs, Some(e)),
            }
        }
        (recs, None)
    }

    #[test]
    fn regression_short_text_that_is_not_a_flow_log_is_refused_at_its_end() {
        for (text, json) in [
            ("These are our flow logs.\nSee the wiki.\n", false),
            ("name,age\nbob,3\n", false),
            ("{\n  \"sgsim_snapshot\": 1,\n  \"groups\": []\n}\n", true),
            ("# only a comment\n\n# and another\n", false),
        ] {
            for strict in [false, true] {
                let (recs, err) = error_of(text, json, strict);
                assert!(recs.is_empty(), "{text:?}");
                assert!(
                    matches!(err, Some(FlowError::NotFlowLog { .. })),
                    "{text:?} strict {strict}: {err:?}"
                );
            }
        }
        let (_, err) = error_of("name,age\nbob,3\n", false, false);
        assert_eq!(
            err.unwrap().to_string(),
            "not a flow log: no usable record in the first 2 lines (line 1: comma-separated \
             line that is not a header naming flow-log fields)"
        );
        // Nothing with content: an empty flow log, not an error.
        assert_eq!(error_of("", false, false), (Vec::new(), None));
        assert_eq!(error_of("\n\n", false, false), (Vec::new(), None));
        // A header alone shows a flow log.
        assert_eq!(
            error_of(
                "version srcaddr dstaddr srcport dstport protocol\n",
                false,
                false
            ),
            (Vec::new(), None)
        );
    }

    #[test]
    fn regression_json_lines_of_other_fields_are_not_a_flow_log() {
        let line = "{\"level\":\"info\",\"msg\":\"hello\"}\n";
        for n in [3, 100] {
            let (recs, err) = error_of(&line.repeat(n), true, false);
            assert!(recs.is_empty());
            match err {
                Some(FlowError::NotFlowLog { line, first }) => {
                    assert_eq!(line, (n as u64).min(GIVE_UP_AFTER));
                    assert_eq!(
                        first,
                        "line 1: a JSON object naming none of a flow log's fields"
                    );
                }
                other => panic!("{n} lines: {other:?}"),
            }
        }
        // What was read before giving up is counted, and adds up.
        let text = line.repeat(100);
        let mut r = Reader::new(text.as_bytes(), true);
        assert!(r.by_ref().all(|x| x.is_err()));
        let s = r.summary();
        assert_eq!((s.records, s.decoded), (GIVE_UP_AFTER, 0));
        assert_eq!(s.skipped_total(), s.records);
        // Objects with flow-log fields but never an address show no flow log either.
        let (_, err) = error_of(&"{\"version\":\"1\"}\n".repeat(3), true, false);
        assert!(
            matches!(&err, Some(FlowError::NotFlowLog { first, .. }) if first == "3 record without addresses"),
            "{err:?}"
        );
        // Among records, such an object is a malformed line, named.
        let good =
            r#"{"srcaddr":"10.0.0.1","dstaddr":"10.0.0.2","protocol":6,"srcport":1,"dstport":2}"#;
        let (recs, s) = read(&format!("{good}\n{line}"), true);
        assert_eq!(recs.len(), 1);
        assert_eq!(s.skipped["malformed flow-log line"], 1);
        assert_eq!(
            s.examples,
            ["line 2: a JSON object naming none of a flow log's fields"]
        );
    }

    #[test]
    fn regression_json_values_of_the_wrong_type_are_malformed_naming_the_field() {
        let rec = |extra: &str| {
            format!(
                r#"{{"srcaddr":"10.0.0.1","dstaddr":"10.0.0.2","protocol":"6","dstport":22{extra}}}"#
            )
        };
        let text = [
            rec(r#","srcport":1"#),
            rec(r#","srcport":[1,2]"#),
            rec(r#","srcport":1,"action":true"#),
            rec(r#","srcport":1,"eni_id":{"id":"eni-1"}"#),
            rec(r#","srcport":null,"tcp-flags":null"#),
        ]
        .join("\n");
        let (recs, s) = read(&text, true);
        assert_eq!(recs.len(), 2, "{s}");
        assert_eq!(recs[1].header.src_port(), 0);
        assert_eq!(recs[1].tcp_flags, None);
        assert_eq!(
            s.examples,
            [
                "line 2: srcport is an array, not a string or a number",
                "line 3: action is a boolean, not a string or a number",
                "line 4: eni-id is an object, not a string or a number",
                "line 5: TCP/UDP record without ports (judged with port 0)",
            ]
        );
    }

    #[test]
    fn regression_tcp_flags_above_255_are_out_of_range_not_cut() {
        let text = "version srcaddr dstaddr srcport dstport protocol tcp-flags\n\
                    5 10.0.0.1 10.0.0.2 1 2 6 19\n\
                    5 10.0.0.1 10.0.0.2 1 2 6 258\n\
                    5 10.0.0.1 10.0.0.2 1 2 6 65535\n\
                    5 10.0.0.1 10.0.0.2 1 2 6 -2\n";
        let (recs, s) = read(text, false);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].tcp_flags, Some(19));
        assert_eq!(
            s.examples,
            [
                "line 3: tcp-flags 258 is out of range",
                "line 4: tcp-flags 65535 is out of range",
                "line 5: tcp-flags -2 is out of range",
            ]
        );
        let json = |flags: u32| {
            format!(
                r#"{{"srcaddr":"10.0.0.1","dstaddr":"10.0.0.2","protocol":6,"srcport":1,"dstport":2,"tcp-flags":{flags}}}"#
            )
        };
        let (recs, s) = read(&format!("{}\n{}\n", json(3), json(258)), true);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].tcp_flags, Some(3));
        assert_eq!(s.examples, ["line 2: tcp-flags 258 is out of range"]);
    }

    #[test]
    fn regression_comment_lines_are_counted_and_blank_lines_are_not_records() {
        let good = "2 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 0 1 ACCEPT OK";
        let text = format!("# written by hand\n{good}\n\n   \n#{good}\n{good}\n");
        let (recs, s) = read(&text, false);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].line, 6);
        assert_eq!(s.records, 4, "{s}");
        assert_eq!(s.decoded, 2);
        assert_eq!(s.skipped[SKIP_COMMENT], 2);
        assert_eq!(s.decoded + s.skipped_total(), s.records);
    }

    #[test]
    fn regression_strict_mode_holds_a_first_bad_line_until_the_input_shows_a_flow_log() {
        let good = "2 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 0 1 ACCEPT OK";
        let (recs, err) = error_of(&format!("2 1 eni-a\n{good}\n"), false, true);
        assert!(recs.is_empty());
        assert_eq!(
            err,
            Some(FlowError::Line {
                line: 1,
                why: "3 fields, the default (v2) format has 14".into()
            })
        );
        let input = std::io::Cursor::new(format!("x\n{good}\n").into_bytes());
        let mut r = Reader::new(input, false).strict(true);
        assert!(r.next().unwrap().is_err());
        assert!(r.next().is_none());
    }
}
