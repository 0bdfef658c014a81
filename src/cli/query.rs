//! `sgsim query`: SQL over Parquet flow logs with the verdict functions (feature `fleet`).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sgsim::packet::input::{Files, Location};
use sgsim::whatif::sql::{Session, CHANGES};

use super::packets::WindowArgs;
use super::revoke::{read_request, StateArgs};
use super::{text_or_file, Exit};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// An aligned table.
    Text,
    /// One JSON array of row objects.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    state: StateArgs,
    /// The revoke request (a query string, a URL, a JSON object, or @FILE): the `_after`
    /// functions and columns judge in the state once it is applied. Without it only the
    /// `_before` ones exist.
    #[arg(long, value_name = "REQ")]
    request: Option<String>,
    /// The action, for request files that do not name one.
    #[arg(long, value_name = "NAME")]
    action: Option<String>,
    /// Parquet flow logs (files or folders, walked, or an s3:// prefix read in place with
    /// the `s3` feature; S3 delivery layouts recognised; with
    /// `--cluster`, the query runs on that Ballista cluster, the functions and their
    /// states travelling in the plan):
    /// the table `flows`, and the view `judged` (with `verdict_before`, `rule_before`,
    /// `verdict_after`, `rule_after`).
    #[arg(long, value_name = "PATH", required = true)]
    traffic: Vec<PathBuf>,
    #[command(flatten)]
    window: WindowArgs,
    /// The query (SQL, or @FILE). Default: the records whose verdict the revoke changes, by
    /// ENI, protocol, port and deciding rules.
    #[arg(long, value_name = "SQL")]
    sql: Option<String>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let before = args.state.load()?;
    let after = match &args.request {
        Some(text) => {
            let (_, request) = read_request(text, args.action.as_deref())?;
            let outcome = sgsim::provider::revoke(&before, &request).context("--request")?;
            for w in &outcome.warnings {
                super::warn(w);
            }
            if let Some(e) = &outcome.error {
                anyhow::bail!("--request: the API refuses the revoke: {e}");
            }
            Some(outcome.state)
        }
        None => None,
    };
    let sql = match (&args.sql, after.is_some()) {
        (Some(sql), _) => text_or_file(sql)?,
        (None, true) => CHANGES.to_string(),
        (None, false) => anyhow::bail!("--sql is needed without --request"),
    };
    let window = args.window.window();
    let mut files = Vec::new();
    for t in &args.traffic {
        let name = t.to_string_lossy();
        let found = Files::open(&name, args.window.options(false)?)
            .with_context(|| format!("--traffic {name}"))?;
        for part in found.parts() {
            let name = sgsim::term::escape(&part.name);
            let parquet = match &part.location {
                Location::Path(p) => is_parquet(p)?,
                #[cfg(feature = "s3")]
                Location::Object(o) => {
                    if args.window.cluster.is_some() {
                        // The executors would read it with credentials of their own.
                        super::warn(&format!(
                            "{name}: a cluster query reads the paths every executor reads, \
                             not s3:// objects (copy them there, or query without \
                             --cluster), left out"
                        ));
                        continue;
                    }
                    o.is_parquet()
                        .with_context(|| format!("--traffic {name}"))?
                }
                _ => false,
            };
            if parquet {
                files.push(part.location.clone());
            } else {
                super::warn(&format!("{name}: not a Parquet flow log, left out"));
            }
        }
    }
    let session = match &args.window.cluster {
        #[cfg(feature = "cluster")]
        Some(url) => Session::remote(url, &before, after.as_ref())?,
        #[cfg(not(feature = "cluster"))]
        Some(_) => anyhow::bail!("--cluster needs sgsim built with the `cluster` feature"),
        None => Session::new(&before, after.as_ref())?,
    };
    session.register(&files, window)?;
    match args.output {
        Output::Text => print!("{}", table(&session.query(&sql)?)?),
        Output::Json => {
            // Streamed a batch at a time: a result of millions of rows is not held.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut first = true;
            session.query_each(&sql, |batch| -> anyhow::Result<()> {
                let rows = json_rows(batch)?;
                for row in rows {
                    let row = sgsim::term::json_safe(&row);
                    write!(out, "{}\n  {row}", if first { "[" } else { "," })?;
                    first = false;
                }
                Ok(())
            })??;
            writeln!(out, "{}", if first { "[]" } else { "\n]" })?;
            out.flush()?;
        }
    }
    Ok(Exit::Ok)
}

/// Whether `path` starts with Parquet's magic bytes (a file shorter than them does not);
/// a file that cannot be read is an error naming it, not a file that is no flow log.
pub(super) fn is_parquet(path: &std::path::Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut magic = Vec::with_capacity(4);
    std::fs::File::open(path)
        .and_then(|f| f.take(4).read_to_end(&mut magic))
        .with_context(|| {
            format!(
                "--traffic {}",
                sgsim::term::escape(&path.display().to_string())
            )
        })?;
    Ok(magic == sgsim::packet::parquet::MAGIC)
}

/// Rows of cells as text (`None`: null).
type Rows = Vec<Vec<Option<String>>>;

/// Every cell of `batches` as text, with the column names.
fn cells(
    batches: &[datafusion::arrow::record_batch::RecordBatch],
) -> anyhow::Result<(Vec<String>, Rows)> {
    let names = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for b in batches {
        let formatters = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| (!c.is_null(i)).then(|| f.value(i).to_string()))
                    .collect(),
            );
        }
    }
    Ok((names, rows))
}

/// An aligned table, text from the files escaped.
fn table(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> anyhow::Result<String> {
    let (names, rows) = cells(batches)?;
    let text = |c: &Option<String>| sgsim::term::escape(c.as_deref().unwrap_or("")).into_owned();
    let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(text(c).chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(
        names
            .iter()
            .map(|n| sgsim::term::escape(n).into_owned())
            .collect(),
    );
    for row in &rows {
        out += &line(row.iter().map(text).collect());
    }
    out += &format!("({} rows)\n", rows.len());
    Ok(out)
}

/// The rows of a batch as JSON objects, keys in the query's column order: numbers where
/// the column is numeric, null where null.
fn json_rows(batch: &datafusion::arrow::record_batch::RecordBatch) -> anyhow::Result<Vec<String>> {
    use serde_json::Value;
    let numeric: Vec<bool> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().is_numeric())
        .collect();
    let (names, rows) = cells(std::slice::from_ref(batch))?;
    rows.into_iter()
        .map(|row| {
            let mut out = String::from("{");
            for (j, ((n, c), &num)) in names.iter().zip(row).zip(&numeric).enumerate() {
                let v = match c {
                    None => Value::Null,
                    Some(c) if num => serde_json::from_str::<serde_json::Number>(&c)
                        .map_or(Value::String(c), Value::Number),
                    Some(c) => Value::String(c),
                };
                if j > 0 {
                    out += ", ";
                }
                out += &serde_json::to_string(n)?;
                out += ": ";
                out += &serde_json::to_string(&v)?;
            }
            out += "}";
            Ok(out)
        })
        .collect()
}
