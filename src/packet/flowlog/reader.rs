//! The flow-log [`Reader`]: lines, the format told from the first line with content, CSV
//! quoting, header lines, and malformed and over-long lines counted.

use std::borrow::Cow;
use std::io::BufRead;

use serde_json::Value;

use super::fields::{Json, Text};
use super::{
    canonical, record, FlowError, Format, Layout, Outcome, Record, GIVE_UP_AFTER, KNOWN, MAX_LINE,
};
use crate::packet::Summary;

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
        if text.is_empty() || text.starts_with('#') {
            return Ok(None);
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
                Ok(Value::Object(o)) => record(&Json(o), Format::Aliyun, line, index, &mut warn),
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
                    return Ok(Some(Outcome::Skip("repeated header line")));
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
                        return Ok(Some(Outcome::Skip("repeated header line")));
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
            self.bad_start += 1;
            if self.bad_start >= GIVE_UP_AFTER || self.buf.contains(&0) {
                return Some(FlowError::NotFlowLog {
                    line: self.line,
                    first: self
                        .summary
                        .examples
                        .first()
                        .cloned()
                        .unwrap_or_else(|| err.to_string()),
                });
            }
        }
        if self.strict {
            return Some(err);
        }
        self.summary.skip(&reason);
        self.summary.example(err.to_string());
        None
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
                    return None;
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
                        Ok(None) => continue,
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
                    self.summary.decoded += 1;
                    return Some(Ok(r));
                }
                Outcome::Skip(why) => {
                    self.recognised = true;
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
}
