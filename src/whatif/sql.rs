//! SQL over flow logs with the security groups' verdicts as functions (feature `fleet`).
//!
//! [`Session`] registers a folder's Parquet flow logs as the table `flows` in an Apache
//! DataFusion session and adds four scalar functions over its columns:
//!
//! | function | gives |
//! |---|---|
//! | `sgsim_verdict_before(…)`, `sgsim_verdict_after(…)` | `accept`, `drop` or `unknown` |
//! | `sgsim_rule_before(…)`, `sgsim_rule_after(…)` | the deciding rule's ID (null: a default or inner access decided) |
//!
//! each taking the eight columns `(interface_id, flow_direction, srcaddr, dstaddr,
//! protocol, srcport, dstport, action)` in that order (`NULL` for one a log lacks). A row is
//! read exactly as the flow-log readers read it and judged by the rules alone, as
//! `sgsim eval --stateless` judges a record: at its logged ENI in its logged (or inferred)
//! direction, an ICMP record without a type over every class of types the rules tell
//! apart (SEMANTICS 4.1). A row that is no record, or touches no ENI of the state, gives
//! null. `before` is the state as loaded, `after` the state once the revoke is applied.
//!
//! The functions judge each Arrow batch on the partition that scanned it, so a query uses
//! every core; DataFusion plans the scan (projection, predicate pushdown), the filters and
//! the aggregations. What the functions give is the rules' answer per record: the
//! connection what-if follows records through time (as a plan of its own, with an
//! aggregate that folds each bucket of connections: [`crate::whatif::fold`]); the two agree
//! on every record that opens a connection.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use datafusion::common::Result as DfResult;
use datafusion::error::DataFusionError;
use datafusion::execution::options::ParquetReadOptions;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::classify::Decision;
use crate::compile::Table;
use crate::model::State;
use crate::packet::input::{Location, Window};
use crate::packet::{parquet, Item};
use crate::track::{Config, Evaluator, Places};

/// The columns every function takes, in order, as flow logs name them.
pub const ARGUMENTS: [&str; 8] = [
    "interface-id",
    "flow-direction",
    "srcaddr",
    "dstaddr",
    "protocol",
    "srcport",
    "dstport",
    "action",
];

/// What went wrong running a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A state does not compile.
    #[error("cannot compile the {world} state: {why}")]
    Compile {
        /// `before` or `after`.
        world: &'static str,
        /// Why.
        why: String,
    },
    /// DataFusion refused the files or the query.
    #[error("{0}")]
    Query(String),
}

/// One world: a state and its compiled table.
struct World {
    state: State,
    table: Table,
    /// Where records are judged, made once for every batch.
    places: Arc<Places>,
    /// The state as a plan carries it to a cluster (see [`encode_udf`]), made once.
    wire: std::sync::OnceLock<Arc<Vec<u8>>>,
}

impl World {
    fn new(state: State) -> Result<World, String> {
        let table = Table::new(&state).map_err(|e| e.to_string())?;
        let places = Arc::new(Places::new(&table, &state).map_err(|e| e.to_string())?);
        Ok(World {
            state,
            table,
            places,
            wire: std::sync::OnceLock::new(),
        })
    }

    fn wire(&self) -> Result<&Arc<Vec<u8>>, String> {
        if let Some(w) = self.wire.get() {
            return Ok(w);
        }
        let bytes = serde_json::to_vec(&self.state).map_err(|e| e.to_string())?;
        Ok(self.wire.get_or_init(|| Arc::new(bytes)))
    }
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "World({} rules)", self.state.rules.len())
    }
}

/// What a function gives of a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Gives {
    Verdict,
    Rule,
}

/// One of the functions.
#[derive(Debug)]
struct Judged {
    name: String,
    world: Arc<World>,
    gives: Gives,
    signature: Signature,
}

impl PartialEq for Judged {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.world, &other.world)
    }
}

impl Eq for Judged {}

impl Hash for Judged {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        Arc::as_ptr(&self.world).hash(state);
    }
}

impl ScalarUDFImpl for Judged {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<DfResult<Vec<ArrayRef>>>()?;
        let out = judge(&self.world, &arrays, self.gives)
            .map_err(|why| DataFusionError::Execution(format!("{}: {why}", self.name)))?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// What the functions give for one row: the verdict and the deciding rule's index
/// (`None`: not judged).
type Judgement = Option<(Decision, Option<u32>)>;

/// A batch's judgements, shared between the functions that read them.
type Judgements = Arc<Vec<Judgement>>;

/// The batch a thread judged last, in which world, and what it gave: a query asks for the
/// verdict and the rule of the same rows one function after the other, on one thread, so
/// the second is a lookup. The arrays are held, so no other batch can reuse their memory
/// and pass for them.
struct Last {
    world: usize,
    arrays: Vec<ArrayRef>,
    judged: Judgements,
}

thread_local! {
    static LAST: std::cell::RefCell<Option<Last>> = const { std::cell::RefCell::new(None) };
}

fn same_arrays(a: &[ArrayRef], b: &[ArrayRef]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            Arc::ptr_eq(x, y)
                || (x.data_type() == &DataType::Null
                    && y.data_type() == &DataType::Null
                    && x.len() == y.len())
        })
}

/// Judges the rows of `arrays` (the [`ARGUMENTS`] in order) in `world`.
fn judge(world: &Arc<World>, arrays: &[ArrayRef], gives: Gives) -> Result<StringArray, String> {
    let key = Arc::as_ptr(world) as usize;
    let cached = LAST.with(|last| {
        last.borrow()
            .as_ref()
            .filter(|l| l.world == key && same_arrays(&l.arrays, arrays))
            .map(|l| l.judged.clone())
    });
    let judged = match cached {
        Some(j) => j,
        None => {
            let j = Arc::new(judge_rows(world, arrays)?);
            LAST.with(|last| {
                *last.borrow_mut() = Some(Last {
                    world: key,
                    arrays: arrays.to_vec(),
                    judged: j.clone(),
                });
            });
            j
        }
    };
    let rules = world.table.rules();
    Ok(judged
        .iter()
        .map(|j| match (gives, j) {
            (_, None) => None,
            (Gives::Verdict, Some((d, _))) => Some(d.as_str()),
            (Gives::Rule, Some((_, r))) => {
                r.and_then(|r| rules.get(r as usize)).map(|id| id.as_str())
            }
        })
        .collect())
}

/// Every row's verdict and deciding rule.
fn judge_rows(world: &World, arrays: &[ArrayRef]) -> Result<Vec<Judgement>, String> {
    let rows = arrays.first().map_or(0, |a| a.len());
    let fields: Vec<Field> = ARGUMENTS
        .iter()
        .zip(arrays)
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays.to_vec())
        .map_err(|e| e.to_string())?;
    let records = parquet::batch_records(&batch)?;
    let items: Vec<Item> = records
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.map(|mut r| {
                r.index = i as u64;
                Item::Flow(r)
            })
        })
        .collect();
    let config = Config {
        partitions: 1,
        stateless: true,
        ..Config::default()
    };
    let mut eval = Evaluator::with_places(&world.table, world.places.clone(), config);
    let mut out = vec![None; rows];
    for o in eval.eval(&items) {
        if let Some(slot) = out.get_mut(o.index as usize) {
            *slot = Some((o.action(), o.rule()));
        }
    }
    Ok(out)
}

/// A DataFusion session over flow logs with the verdict functions registered.
pub struct Session {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    /// The `_after` functions exist.
    after: bool,
    /// The cluster the queries run on, named in errors.
    cluster: Option<String>,
}

impl Session {
    /// A session judging in `before` and, when given, `after` (the state once the revoke
    /// is applied; without it only the `_before` functions exist).
    pub fn new(before: &State, after: Option<&State>) -> Result<Session, Error> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = SessionConfig::new()
            .with_target_partitions(cores)
            .with_batch_size(parquet::BATCH);
        Session::with_context(
            SessionContext::new_with_config(config),
            runtime()?,
            before,
            after,
        )
    }

    /// A session whose queries run on the Ballista cluster whose scheduler is at `url`
    /// (`df://HOST:PORT`): the functions travel in the plan with their states (see
    /// [`encode_udf`]), so the executors need nothing but sgsim.
    #[cfg(feature = "cluster")]
    pub fn remote(url: &str, before: &State, after: Option<&State>) -> Result<Session, Error> {
        let runtime = runtime()?;
        let ctx = runtime
            .block_on(crate::cluster::client(url))
            .map_err(|e| Error::Query(format!("cluster {url}: {e}")))?;
        let mut session = Session::with_context(ctx, runtime, before, after)?;
        session.cluster = Some(url.to_string());
        Ok(session)
    }

    /// A DataFusion error as this session's: on a cluster, naming it.
    fn error(&self, e: DataFusionError) -> Error {
        match &self.cluster {
            Some(url) => Error::Query(format!("cluster {url}: {e}")),
            None => Error::Query(e.to_string()),
        }
    }

    fn with_context(
        ctx: SessionContext,
        runtime: tokio::runtime::Runtime,
        before: &State,
        after: Option<&State>,
    ) -> Result<Session, Error> {
        let mut worlds = vec![("before", before)];
        worlds.extend(after.map(|a| ("after", a)));
        for (name, state) in worlds {
            let world = Arc::new(
                World::new(state.clone()).map_err(|why| Error::Compile { world: name, why })?,
            );
            for (prefix, gives) in [
                ("sgsim_verdict", Gives::Verdict),
                ("sgsim_rule", Gives::Rule),
            ] {
                ctx.register_udf(ScalarUDF::from(Judged {
                    name: format!("{prefix}_{name}"),
                    world: world.clone(),
                    gives,
                    signature: Signature::any(ARGUMENTS.len(), Volatility::Immutable),
                }));
            }
        }
        Ok(Session {
            ctx,
            runtime,
            after: after.is_some(),
            cluster: None,
        })
    }

    /// Registers the Parquet files `files` (local files, or objects of one S3 bucket read
    /// in place) as the table `flows`, and the view `judged`: every column of `flows` and
    /// `verdict_before`, `rule_before` (and `verdict_after`, `rule_after` when the session
    /// has an after), the functions applied to the columns the files have (`NULL` for the
    /// others).
    ///
    /// `window` leaves out records as the readers do: a record whose window ends before
    /// `since` or starts at or after `until`.
    pub fn register(&self, files: &[Location], window: Window) -> Result<(), Error> {
        // One table reads one store: local files, or one bucket.
        let mut store: Option<String> = None;
        let mut paths = Vec::with_capacity(files.len());
        for file in files {
            let (at, path) = match file {
                Location::Path(p) => {
                    let abs = p
                        .canonicalize()
                        .map_err(|e| Error::Query(format!("{}: {e}", p.display())))?;
                    let path = abs.to_str().map(str::to_string).ok_or_else(|| {
                        Error::Query(format!("{}: the path is not UTF-8", p.display()))
                    })?;
                    ("local files".to_string(), path)
                }
                #[cfg(feature = "s3")]
                Location::Object(o) => {
                    if store.is_none() {
                        let url = datafusion::execution::object_store::ObjectStoreUrl::parse(
                            o.bucket_url(),
                        )
                        .map_err(|e| Error::Query(format!("{}: {e}", o.url())))?;
                        self.ctx.register_object_store(url.as_ref(), o.store());
                    }
                    (o.bucket_url(), o.url())
                }
            };
            match &store {
                Some(s) if *s != at => {
                    return Err(Error::Query(format!(
                        "one query reads local files or the objects of one bucket, not \
                         {s} and {at} together"
                    )))
                }
                _ => store = Some(at),
            }
            paths.push(path);
        }
        if paths.is_empty() {
            return Err(Error::Query("no Parquet flow log to query".into()));
        }
        let options = ParquetReadOptions {
            file_extension: "",
            ..Default::default()
        };
        self.runtime
            .block_on(async {
                let frame = self.ctx.read_parquet(paths, options).await?;
                let columns: Vec<String> = frame
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let frame = match time_filter(&columns, window) {
                    Some(filter) => self.ctx.read_table(frame.into_view())?.filter(filter)?,
                    None => frame,
                };
                self.ctx.register_table("flows", frame.into_view())?;
                let args = arguments(&columns);
                let mut select = String::from("SELECT *");
                let worlds: &[&str] = if self.after {
                    &["before", "after"]
                } else {
                    &["before"]
                };
                for world in worlds {
                    select.push_str(&format!(
                        ", sgsim_verdict_{world}({args}) AS verdict_{world}, \
                         sgsim_rule_{world}({args}) AS rule_{world}"
                    ));
                }
                select.push_str(" FROM flows");
                let judged = self.ctx.sql(&select).await?;
                self.ctx.register_table("judged", judged.into_view())?;
                Ok::<(), DataFusionError>(())
            })
            .map_err(|e| self.error(e))
    }

    /// Runs `sql` and collects its result.
    pub fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, Error> {
        self.runtime
            .block_on(async { self.ctx.sql(sql).await?.collect().await })
            .map_err(|e| self.error(e))
    }

    /// Runs `sql` and hands its result to `each` a batch at a time, as DataFusion makes
    /// them (memory follows the batch, not the result). An error of `each` stops the
    /// query and is returned.
    pub fn query_each<E>(
        &self,
        sql: &str,
        mut each: impl FnMut(&RecordBatch) -> Result<(), E>,
    ) -> Result<Result<(), E>, Error> {
        use futures::StreamExt;
        self.runtime
            .block_on(async {
                let mut stream = self.ctx.sql(sql).await?.execute_stream().await?;
                while let Some(batch) = stream.next().await {
                    if let Err(e) = each(&batch?) {
                        return Ok(Err(e));
                    }
                }
                Ok(Ok(()))
            })
            .map_err(|e| self.error(e))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("sgsim-sql")
        .enable_all()
        .build()
        .map_err(|e| Error::Query(format!("cannot start the query runtime: {e}")))
}

/// What a plan carries for one of the functions starts with this.
const WIRE_MAGIC: &[u8] = b"sgsim-sql-function/1\n";

/// Writes what a plan carries for `udf` when it is one of this module's functions: what
/// it gives and its world's state (sgsim's snapshot JSON), so that a scheduler or an
/// executor can rebuild it ([`decode_udf`]). `Ok(false)`: not one of ours.
pub fn encode_udf(udf: &ScalarUDF, buf: &mut Vec<u8>) -> Result<bool, String> {
    let inner: &dyn std::any::Any = udf.inner().as_ref();
    let Some(j) = inner.downcast_ref::<Judged>() else {
        return Ok(false);
    };
    buf.extend_from_slice(WIRE_MAGIC);
    buf.push(match j.gives {
        Gives::Verdict => b'v',
        Gives::Rule => b'r',
    });
    buf.extend_from_slice(j.world.wire()?);
    Ok(true)
}

/// Rebuilds the function `name` from what [`encode_udf`] wrote; `Ok(None)` when the bytes
/// are not ours. A state seen before is not compiled again (the last few are kept).
pub fn decode_udf(name: &str, buf: &[u8]) -> Result<Option<Arc<ScalarUDF>>, String> {
    use std::sync::Mutex;
    /// A world and its state's bytes.
    type Known = (Arc<Vec<u8>>, Arc<World>);
    static WORLDS: Mutex<Vec<Known>> = Mutex::new(Vec::new());
    const KEEP: usize = 8;
    let Some(rest) = buf.strip_prefix(WIRE_MAGIC) else {
        return Ok(None);
    };
    let (gives, json) = match rest.split_first() {
        Some((b'v', json)) => (Gives::Verdict, json),
        Some((b'r', json)) => (Gives::Rule, json),
        _ => return Err(format!("{name}: the plan's function definition is damaged")),
    };
    let cached = {
        let worlds = WORLDS
            .lock()
            .map_err(|_| "the world cache is poisoned".to_string())?;
        worlds
            .iter()
            .find(|(bytes, _)| bytes.as_slice() == json)
            .map(|(_, w)| w.clone())
    };
    let world = match cached {
        Some(w) => w,
        None => {
            let state: State = serde_json::from_slice(json)
                .map_err(|e| format!("{name}: the plan's state does not read: {e}"))?;
            let world = Arc::new(World::new(state)?);
            let bytes = Arc::new(json.to_vec());
            let _ = world.wire.set(bytes.clone());
            let mut worlds = WORLDS
                .lock()
                .map_err(|_| "the world cache is poisoned".to_string())?;
            if worlds.len() >= KEEP {
                worlds.remove(0);
            }
            worlds.push((bytes, world.clone()));
            world
        }
    };
    Ok(Some(Arc::new(ScalarUDF::from(Judged {
        name: name.to_string(),
        world,
        gives,
        signature: Signature::any(ARGUMENTS.len(), Volatility::Immutable),
    }))))
}

/// The records of `window`, over a table of `columns` (its `start` and `end`).
fn time_filter(columns: &[String], window: Window) -> Option<datafusion::prelude::Expr> {
    use datafusion::prelude::{cast, coalesce, col, lit, Expr};
    if window.is_all() {
        return None;
    }
    let find = |name: &str| {
        columns
            .iter()
            .find(|c| crate::packet::flowlog::canonical(c) == name)
    };
    let (start, end) = (find("start")?, find("end")?);
    // Cast: AWS writes them as int64, others as text or unsigned; absent is 0, as the
    // readers take it.
    let number = |c: &String| {
        coalesce(vec![
            cast(col(format!("\"{c}\"")), DataType::Int64),
            lit(0i64),
        ])
    };
    let mut filter: Option<Expr> = None;
    let mut and = |e: Expr| {
        filter = Some(match filter.take() {
            Some(f) => f.and(e),
            None => e,
        })
    };
    if let Some(since) = window.since {
        let since = lit(since as i64);
        and(number(end)
            .gt_eq(since.clone())
            .or(number(start).gt_eq(since)));
    }
    if let Some(until) = window.until {
        and(number(start).lt(lit(until as i64)));
    }
    filter
}

/// The functions' arguments over a table of `columns`: each of [`ARGUMENTS`] by either
/// spelling, `NULL` where the table lacks it.
fn arguments(columns: &[String]) -> String {
    ARGUMENTS
        .iter()
        .map(|want| {
            columns
                .iter()
                .find(|c| crate::packet::flowlog::canonical(c) == *want)
                .map_or_else(
                    || "NULL".to_string(),
                    |c| format!("\"{}\"", c.replace('"', "\"\"")),
                )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The query `sgsim query` runs when given none: the records whose verdict the revoke
/// changes, by ENI, direction, protocol, destination port and deciding rules.
pub const CHANGES: &str = "SELECT interface_id, protocol, dstport, verdict_before, verdict_after, \
     rule_before, rule_after, count(*) AS records, sum(packets) AS packets, sum(bytes) AS bytes \
     FROM judged WHERE verdict_before IS DISTINCT FROM verdict_after \
     GROUP BY interface_id, protocol, dstport, verdict_before, verdict_after, rule_before, rule_after \
     ORDER BY records DESC, interface_id, protocol, dstport";

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array, StringArray as Strings};

    fn state() -> State {
        crate::track::tests::state()
    }

    /// Rows of (srcaddr, dstaddr, action, srcport, dstport, protocol); no ENI or
    /// direction columns.
    type Row = (&'static str, &'static str, &'static str, i64, i64, i64);

    fn columns(rows: &[Row]) -> Vec<ArrayRef> {
        let text = |f: fn(&Row) -> &'static str| -> ArrayRef {
            Arc::new(Strings::from_iter_values(rows.iter().map(f)))
        };
        let int = |f: fn(&Row) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
        };
        let null = || -> ArrayRef { Arc::new(arrow_array::NullArray::new(rows.len())) };
        vec![
            null(),
            null(),
            text(|r| r.0),
            text(|r| r.1),
            int(|r| r.5),
            int(|r| r.3),
            int(|r| r.4),
            text(|r| r.2),
        ]
    }

    fn verdicts(udf: &ScalarUDF, arrays: &[ArrayRef]) -> Vec<Option<String>> {
        let inner: &dyn std::any::Any = udf.inner().as_ref();
        let j = inner.downcast_ref::<Judged>().unwrap();
        let out = judge(&j.world, arrays, j.gives).unwrap();
        (0..out.len())
            .map(|i| (!out.is_null(i)).then(|| out.value(i).to_string()))
            .collect()
    }

    #[test]
    fn functions_travel_in_plans_and_judge_the_same_after_the_trip() {
        let world = Arc::new(World::new(state()).unwrap());
        let rows = columns(&[
            ("10.0.0.99", "10.0.0.1", "ACCEPT", 50000, 22, 6),
            ("10.0.0.99", "10.0.0.1", "ACCEPT", 50000, 80, 6),
            ("192.0.2.1", "198.51.100.1", "ACCEPT", 1, 2, 6),
        ]);
        for gives in [Gives::Verdict, Gives::Rule] {
            let udf = ScalarUDF::from(Judged {
                name: "sgsim_verdict_before".into(),
                world: world.clone(),
                gives,
                signature: Signature::any(ARGUMENTS.len(), Volatility::Immutable),
            });
            let mut buf = Vec::new();
            assert!(encode_udf(&udf, &mut buf).unwrap());
            let back = decode_udf("sgsim_verdict_before", &buf).unwrap().unwrap();
            let here = verdicts(&udf, &rows);
            assert_eq!(here, verdicts(&back, &rows));
            // The record that touches no ENI is not judged.
            assert_eq!(here[2], None);
            let want: [Option<&str>; 3] = match gives {
                Gives::Verdict => [Some("accept"), Some("drop"), None],
                Gives::Rule => [Some("r-ssh"), None, None],
            };
            assert_eq!(here, want.map(|w| w.map(str::to_string)));
            // Damaged bytes are an error naming the function, never a panic.
            let cut = &buf[..buf.len() / 2];
            let err = decode_udf("sgsim_verdict_before", cut).unwrap_err();
            assert!(err.contains("sgsim_verdict_before"), "{err}");
        }
        // Bytes that are not ours are left to the next codec; functions that are not ours
        // are not encoded.
        assert!(decode_udf("upper", b"").unwrap().is_none());
        let other = datafusion::functions::string::upper();
        let mut buf = Vec::new();
        assert!(!encode_udf(&other, &mut buf).unwrap());
        assert!(buf.is_empty());
    }
}
