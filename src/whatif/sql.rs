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
//! connection what-if (`sgsim whatif`) follows records through time and is not a SQL
//! aggregation; the two agree on every record that opens a connection.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
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

use crate::compile::Table;
use crate::model::State;
use crate::packet::input::Window;
use crate::packet::{parquet, Item};
use crate::track::{Config, Evaluator};

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

/// Judges the rows of `arrays` (the [`ARGUMENTS`] in order) in `world`.
fn judge(world: &World, arrays: &[ArrayRef], gives: Gives) -> Result<StringArray, String> {
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
                Item::Flow(Box::new(r))
            })
        })
        .collect();
    let config = Config {
        partitions: 1,
        stateless: true,
        ..Config::default()
    };
    let mut eval = Evaluator::new(&world.table, &world.state, config).map_err(|e| e.to_string())?;
    let mut out: Vec<Option<String>> = vec![None; rows];
    for o in eval.eval(&items) {
        let Some(slot) = out.get_mut(o.index as usize) else {
            continue;
        };
        *slot = match gives {
            Gives::Verdict => Some(o.action().as_str().to_string()),
            Gives::Rule => o
                .rule()
                .and_then(|r| world.table.rules().get(r as usize))
                .map(|id| id.as_str().to_string()),
        };
    }
    Ok(StringArray::from(out))
}

/// A DataFusion session over flow logs with the verdict functions registered.
pub struct Session {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    /// The `_after` functions exist.
    after: bool,
}

impl Session {
    /// A session judging in `before` and, when given, `after` (the state once the revoke
    /// is applied; without it only the `_before` functions exist).
    pub fn new(before: &State, after: Option<&State>) -> Result<Session, Error> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = SessionConfig::new()
            .with_target_partitions(cores)
            .with_batch_size(parquet::BATCH);
        let ctx = SessionContext::new_with_config(config);
        let mut worlds = vec![("before", before)];
        worlds.extend(after.map(|a| ("after", a)));
        for (name, state) in worlds {
            let table = Table::new(state).map_err(|e| Error::Compile {
                world: name,
                why: e.to_string(),
            })?;
            let world = Arc::new(World {
                state: state.clone(),
                table,
            });
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("sgsim-sql")
            .enable_all()
            .build()
            .map_err(|e| Error::Query(format!("cannot start the query runtime: {e}")))?;
        Ok(Session {
            ctx,
            runtime,
            after: after.is_some(),
        })
    }

    /// Registers the Parquet files `files` as the table `flows`, and the view `judged`:
    /// every column of `flows` and `verdict_before`, `rule_before` (and `verdict_after`,
    /// `rule_after` when the session has an after), the functions applied to the columns
    /// the files have (`NULL` for the others).
    ///
    /// `window` leaves out records as the readers do: a record whose window ends before
    /// `since` or starts at or after `until`.
    pub fn register(&self, files: &[PathBuf], window: Window) -> Result<(), Error> {
        let paths = files
            .iter()
            .map(|p| {
                let abs = p
                    .canonicalize()
                    .map_err(|e| Error::Query(format!("{}: {e}", p.display())))?;
                abs.to_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::Query(format!("{}: the path is not UTF-8", p.display())))
            })
            .collect::<Result<Vec<String>, Error>>()?;
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
            .map_err(|e| Error::Query(e.to_string()))
    }

    /// Runs `sql` and collects its result.
    pub fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, Error> {
        self.runtime
            .block_on(async { self.ctx.sql(sql).await?.collect().await })
            .map_err(|e| Error::Query(e.to_string()))
    }
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
