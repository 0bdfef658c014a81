//! The served state: an atomically swapped snapshot readers load without blocking, one
//! writer at a time applying revokes with the provider's own code, the log of changes, and
//! their durable copy in `--data DIR`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::{Provider, Rule, RuleId, State};
use crate::provider::{self, Outcome, RawRequest, RequestError};
use crate::whatif::{self, report, space};

/// Which API a request speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The EC2 Query API (AWS).
    Ec2,
    /// The ECS RPC API (Alibaba Cloud).
    Ecs,
}

impl Api {
    /// The provider behind the API.
    pub fn provider(self) -> Provider {
        match self {
            Api::Ec2 => Provider::Aws,
            Api::Ecs => Provider::Aliyun,
        }
    }
}

/// One revoke request the server answered, accepted or not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Its place in the order the server applied requests (1, 2, …).
    pub seq: u64,
    /// When it was answered (RFC 3339, UTC).
    pub time: String,
    /// The API it spoke.
    pub api: Api,
    /// Its action.
    pub action: String,
    /// Whether the API accepted it (HTTP 2xx).
    pub accepted: bool,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The error code, when rejected.
    pub error: Option<String>,
    /// The rules it removed, by provider rule ID.
    pub revoked: Vec<RuleId>,
    /// The request's parameters as received (signature parameters included).
    pub request: Vec<(String, String)>,
    /// The response body, as sent.
    pub response: String,
}

/// What the `--data` directory could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file is not what sgsim wrote.
    #[error("{path}: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The durable form of the state: written after each change, read on restart.
#[derive(Serialize, Deserialize)]
struct Saved {
    sgsim_serve: u32,
    /// The last change the state includes.
    seq: u64,
    state: State,
}

/// The `--data` directory: `baseline.json` (the state the session started from),
/// `state.json` (the state after the last accepted change, with its sequence number) and
/// `changes.jsonl` (one line per answered revoke, fsynced before the answer is sent).
#[derive(Debug)]
struct Data {
    dir: PathBuf,
}

impl Data {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a file atomically: a temporary file in the same folder, fsync, rename, then
    /// an fsync of the folder so the rename itself survives a crash.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.path(name);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io(&self.dir))?;
        tmp.write_all(bytes).map_err(io(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io(&path))?;
        tmp.persist(&path).map_err(|e| Error::Io {
            path: path.clone(),
            source: e.error,
        })?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }

    fn append(&self, change: &Change) -> Result<(), Error> {
        let path = self.path("changes.jsonl");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut line = serde_json::to_vec(change).map_err(|e| Error::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
        line.push(b'\n');
        f.write_all(&line).map_err(io(&path))?;
        f.sync_data().map_err(io(&path))
    }

    fn save_state(&self, seq: u64, state: &State) -> Result<(), Error> {
        let saved = Saved {
            sgsim_serve: 1,
            seq,
            state: state.clone(),
        };
        let bytes = serde_json::to_vec(&saved).map_err(|e| Error::Corrupt {
            path: self.path("state.json"),
            why: e.to_string(),
        })?;
        self.write_atomic("state.json", &bytes)
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        let path = self.path(name);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text).map_err(|e| Error::Corrupt {
            path,
            why: e.to_string(),
        })
    }

    /// The saved session, if the folder holds one: baseline, state, changes. Changes that
    /// altered the state but are newer than the saved state were never acknowledged (the
    /// server crashed between the two writes) and are dropped; so is a torn last line.
    fn load(&self) -> Result<Option<Resumed>, Error> {
        if !self.path("state.json").exists() {
            return Ok(None);
        }
        let baseline: State = self.read_json("baseline.json")?;
        let saved: Saved = self.read_json("state.json")?;
        let mut changes = Vec::new();
        let path = self.path("changes.jsonl");
        if path.exists() {
            let f = File::open(&path).map_err(io(&path))?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(io(&path))?;
                let Ok(change) = serde_json::from_str::<Change>(&line) else {
                    break;
                };
                if change.accepted && !change.revoked.is_empty() && change.seq > saved.seq {
                    continue;
                }
                changes.push(change);
            }
        }
        let seq = changes.last().map_or(saved.seq, |c| c.seq.max(saved.seq));
        Ok(Some(Resumed {
            baseline,
            current: saved.state,
            seq,
            changes,
        }))
    }
}

/// A session read back from `--data`.
struct Resumed {
    baseline: State,
    current: State,
    seq: u64,
    changes: Vec<Change>,
}

/// The writer's side: serialized by a mutex.
#[derive(Debug)]
struct Log {
    seq: u64,
    changes: Vec<Change>,
}

/// The served state.
#[derive(Debug)]
pub struct Store {
    baseline: Arc<State>,
    current: ArcSwap<State>,
    log: Mutex<Log>,
    data: Option<Data>,
}

/// The answer to a revoke: the provider's outcome and the change logged for it.
#[derive(Debug)]
pub struct Applied {
    /// What the provider answered.
    pub outcome: Outcome,
    /// The logged change.
    pub change: Change,
}

impl Store {
    /// A store serving `state`; with `data`, the session saved there is resumed when there
    /// is one (then `state` is not used), else `state` becomes its baseline. Returns the
    /// store and how many changes were resumed.
    pub fn open(state: State, data: Option<&Path>) -> Result<(Store, Option<usize>), Error> {
        let data = data.map(|d| Data {
            dir: d.to_path_buf(),
        });
        if let Some(d) = &data {
            std::fs::create_dir_all(&d.dir).map_err(io(&d.dir))?;
            if let Some(Resumed {
                baseline,
                current,
                seq,
                changes,
            }) = d.load()?
            {
                let n = changes.len();
                let store = Store {
                    baseline: Arc::new(baseline),
                    current: ArcSwap::from_pointee(current),
                    log: Mutex::new(Log { seq, changes }),
                    data,
                };
                return Ok((store, Some(n)));
            }
            let bytes = serde_json::to_vec(&state).map_err(|e| Error::Corrupt {
                path: d.path("baseline.json"),
                why: e.to_string(),
            })?;
            d.write_atomic("baseline.json", &bytes)?;
            d.write_atomic("changes.jsonl", b"")?;
            d.save_state(0, &state)?;
        }
        let baseline = Arc::new(state);
        Ok((
            Store {
                current: ArcSwap::new(Arc::clone(&baseline)),
                baseline,
                log: Mutex::new(Log {
                    seq: 0,
                    changes: Vec::new(),
                }),
                data,
            },
            None,
        ))
    }

    /// The state now: a snapshot that no later change alters. Never blocks.
    pub fn current(&self) -> Arc<State> {
        self.current.load_full()
    }

    /// The state the session started from.
    pub fn baseline(&self) -> Arc<State> {
        Arc::clone(&self.baseline)
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-written: every field is
        // assigned after the fallible work. Keep serving.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every answered revoke, in the order applied.
    pub fn changes(&self) -> Vec<Change> {
        self.lock().changes.clone()
    }

    /// Applies a revoke with the provider's own code and swaps the new state in when it
    /// changes anything. Durable before it returns when the store has a `--data` folder.
    /// The answer carries `request_id`; `render` gives the response body to log.
    pub fn revoke(
        &self,
        api: Api,
        request: &RawRequest,
        request_id: &str,
        time: String,
        render: impl Fn(&Outcome) -> String,
    ) -> Result<Result<Applied, Error>, RequestError> {
        let mut log = self.lock();
        let before = self.current.load_full();
        let outcome = match api {
            Api::Ec2 => {
                let config = provider::aws::Config {
                    request_id: Some(request_id.to_ascii_lowercase()),
                    ..provider::aws::Config::default()
                };
                provider::aws::revoke_with(&before, request, &config)?
            }
            Api::Ecs => provider::aliyun::revoke_with_id(&before, request, request_id)?,
        };
        let changed = outcome.error.is_none()
            && (!outcome.revoked.is_empty()
                || outcome.state.provider_state != before.provider_state);
        let seq = log.seq + 1;
        fn params(request: &RawRequest) -> Vec<(String, String)> {
            match request {
                RawRequest::Query(p) => p.0.clone(),
                RawRequest::Json(v) => vec![("(json)".into(), v.to_string())],
                RawRequest::Repeated { request, .. } => params(request),
            }
        }
        let params = params(request);
        let change = Change {
            seq,
            time,
            api,
            action: request.action().unwrap_or("").to_string(),
            accepted: outcome.error.is_none(),
            status: outcome.status,
            error: outcome.error.as_ref().map(|e| e.code.clone()),
            revoked: outcome.revoked.iter().map(|r| r.id.clone()).collect(),
            request: params,
            response: render(&outcome),
        };
        if let Some(d) = &self.data {
            // The log line first: a crash before the state is written leaves a line the
            // next start drops (its seq is newer than the saved state's).
            if let Err(e) = d.append(&change) {
                return Ok(Err(e));
            }
            if changed {
                if let Err(e) = d.save_state(seq, &outcome.state) {
                    return Ok(Err(e));
                }
            }
        }
        if changed {
            self.current.store(Arc::new(outcome.state.clone()));
        }
        log.seq = seq;
        log.changes.push(change.clone());
        Ok(Ok(Applied { outcome, change }))
    }

    /// Back to the baseline: the log is emptied.
    pub fn reset(&self) -> Result<(), Error> {
        let mut log = self.lock();
        if let Some(d) = &self.data {
            d.save_state(0, &self.baseline)?;
            d.write_atomic("changes.jsonl", b"")?;
        }
        self.current.store(Arc::clone(&self.baseline));
        log.seq = 0;
        log.changes.clear();
        Ok(())
    }

    /// The what-if of the session: the baseline against the state now, as one revoke of
    /// every rule that is gone. `changes` summarises the log in the report's `response`.
    pub fn plan(&self) -> Result<whatif::Plan, whatif::Error> {
        let (now, changes) = {
            let log = self.lock();
            (self.current.load_full(), log.changes.clone())
        };
        let before = &self.baseline;
        let kept: std::collections::HashSet<&RuleId> = now.rules.iter().map(|r| &r.id).collect();
        let revoked: Vec<Rule> = before
            .rules
            .iter()
            .filter(|r| !kept.contains(&r.id))
            .cloned()
            .collect();
        let provider = revoked
            .first()
            .and_then(|r| before.group(&r.group))
            .map(|g| g.provider)
            .or_else(|| before.groups.first().map(|g| g.provider))
            .unwrap_or(Provider::Aws);
        let accepted = changes.iter().filter(|c| c.accepted).count();
        let outcome = Outcome {
            provider,
            error: None,
            status: 200,
            json: json!({
                "requests": changes.len(),
                "accepted": accepted,
                "rejected": changes.len() - accepted,
                "changes": changes.iter().map(|c| json!({
                    "seq": c.seq, "api": c.api, "action": c.action, "status": c.status,
                    "error": c.error, "revoked": c.revoked,
                })).collect::<Vec<Value>>(),
            }),
            xml: String::new(),
            state: (*now).clone(),
            revoked,
            warnings: Vec::new(),
        };
        let diff = if outcome.revoked.is_empty() {
            space::Diff {
                regions: Vec::new(),
                complete: true,
                stopped: None,
            }
        } else {
            let removed: Vec<RuleId> = outcome.revoked.iter().map(|r| r.id.clone()).collect();
            space::revoke_diff(before, &removed)?
        };
        let mut report = report::skeleton(before, &outcome, diff.regions, provider::rule_json);
        report.header_space_complete = diff.complete;
        report.header_space_stopped = diff.stopped;
        Ok(whatif::Plan { outcome, report })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        let docs = vec![(
            "t.json".to_string(),
            json!({
                "SecurityGroups": [
                    {"GroupId": "sg-0bbb", "GroupName": "b", "VpcId": "vpc-0abc", "OwnerId": "1",
                     "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                        "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "192.168.0.0/16"}]}]}
                ],
                "Vpcs": [{"VpcId": "vpc-0abc", "IsDefault": false}]
            }),
        )];
        provider::import_values(&docs).unwrap().state
    }

    const REVOKE: &str = "Action=RevokeSecurityGroupIngress&GroupId=sg-0bbb&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8";

    #[test]
    fn swaps_on_accept_and_resumes_from_data() {
        let dir = tempfile::tempdir().unwrap();
        let (store, resumed) = Store::open(state(), Some(dir.path())).unwrap();
        assert_eq!(resumed, None);
        let old = store.current();
        let req = RawRequest::parse(REVOKE).unwrap();
        let a = store
            .revoke(Api::Ec2, &req, "id", "t".into(), |o| o.xml.clone())
            .unwrap()
            .unwrap();
        assert!(a.change.accepted && a.change.revoked.len() == 1);
        assert_eq!(old.rules.len(), 2, "an old snapshot never changes");
        assert_eq!(store.current().rules.len(), 1);
        let again = store
            .revoke(Api::Ec2, &req, "id", "t".into(), |o| o.xml.clone())
            .unwrap()
            .unwrap();
        assert_eq!(
            again.change.error.as_deref(),
            Some("InvalidPermission.NotFound")
        );
        drop(store);
        let (back, resumed) = Store::open(State::default(), Some(dir.path())).unwrap();
        assert_eq!(resumed, Some(2));
        assert_eq!(back.current().rules.len(), 1);
        assert_eq!(back.baseline().rules.len(), 2);
        let plan = back.plan().unwrap();
        assert_eq!(plan.report.revoked_rules.len(), 1);
        back.reset().unwrap();
        assert_eq!(back.current().rules.len(), 2);
        assert!(back.changes().is_empty());
    }

    #[test]
    fn unacknowledged_changes_are_dropped_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(state(), Some(dir.path())).unwrap();
        let req = RawRequest::parse(REVOKE).unwrap();
        let a = store
            .revoke(Api::Ec2, &req, "id", "t".into(), |o| o.xml.clone())
            .unwrap()
            .unwrap();
        drop(store);
        // As if the server died after the log line of change 1, before state.json: put the
        // saved state back to seq 0, and add a torn line.
        let d = Data {
            dir: dir.path().to_path_buf(),
        };
        d.save_state(0, &state()).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.path("changes.jsonl"))
            .unwrap();
        f.write_all(b"{\"seq\":2,\"ti").unwrap();
        let (back, resumed) = Store::open(State::default(), Some(dir.path())).unwrap();
        assert_eq!(resumed, Some(0));
        assert_eq!(back.current().rules.len(), 2);
        assert!(a.change.seq == 1);
    }
}
