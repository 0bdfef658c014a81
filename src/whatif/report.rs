//! The what-if report: the provider's response, the revoked rules, verdicts on traffic
//! before and after, the flows that flip, rule hits, the exact header-space difference and
//! the stateful caveats.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::classify::Named;
use crate::model::{Action, Direction, EniId, Header, Provider, Rule, RuleId, State};
use crate::provider::Outcome;
use crate::whatif::space::{Decider, Region};

/// One unit of traffic judged before and after: a packet (count 1) or a flow-log record.
#[derive(Clone, Debug)]
pub struct Judged {
    /// Position in its source (0-based).
    pub index: u64,
    /// Capture or record time, nanoseconds since the Unix epoch, when known.
    pub time_ns: Option<u64>,
    /// The ENI it was judged at.
    pub eni: EniId,
    /// The direction.
    pub direction: Direction,
    /// Its header.
    pub header: Header,
    /// Packets it stands for (1 for a captured packet).
    pub packets: u64,
    /// Bytes it stands for.
    pub bytes: u64,
    /// The verdict before the revoke.
    pub before: Named,
    /// The verdict after.
    pub after: Named,
    /// What a flow log recorded (ACCEPT/REJECT), when it came from one.
    pub logged: Option<Action>,
    /// The flow log's `reject-reason` (AWS v8, e.g. `BPA`), when it gave one.
    pub reject_reason: Option<String>,
}

/// Packet verdicts by transition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Changed {
    /// Accepted before, dropped after.
    pub accept_to_drop: u64,
    /// Dropped before, accepted after.
    pub drop_to_accept: u64,
}

/// Totals over the traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Packets judged (records weighted by their packet counts).
    pub judged: u64,
    /// Accepted before.
    pub accepted_before: u64,
    /// Accepted after.
    pub accepted_after: u64,
    /// Dropped before.
    pub dropped_before: u64,
    /// Dropped after.
    pub dropped_after: u64,
}

/// A flow (5-tuple at one ENI and direction) whose verdict changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// The ENI.
    pub eni: EniId,
    /// The direction.
    pub direction: Direction,
    /// Source address.
    pub src: String,
    /// Destination address.
    pub dst: String,
    /// Protocol number.
    pub protocol: u8,
    /// Source port (ICMP: type).
    pub src_port: u16,
    /// Destination port (ICMP: code).
    pub dst_port: u16,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// First time seen (ns since the epoch), when known.
    pub first_seen_ns: Option<u64>,
    /// Last time seen.
    pub last_seen_ns: Option<u64>,
    /// Verdict before.
    pub before: Decider,
    /// Verdict after.
    pub after: Decider,
}

/// Hits of one rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hits {
    /// The rule.
    pub rule_id: RuleId,
    /// Packets it decided before.
    pub before: u64,
    /// Packets it decides after (0 for a revoked rule).
    pub after: u64,
}

/// How often the model's before-verdicts agree with what flow logs recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Agreement {
    /// Records with a logged action.
    pub records: u64,
    /// Records whose logged action equals the model's before-verdict.
    pub agree: u64,
    /// `agree / records`.
    pub ratio: f64,
    /// Records the log accepted but the model drops: the model is missing an allow.
    pub logged_accept_model_drop: u64,
    /// Records the log rejected but the model accepts (a network ACL may explain these).
    pub logged_reject_model_accept: u64,
    /// Of those, the ones whose `reject-reason` names a cause outside security groups
    /// and network ACLs (`BPA`: VPC Block Public Access), by reason; the rest are
    /// explained by a network ACL or not at all.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub logged_reject_reasons: std::collections::BTreeMap<String, u64>,
}

/// Packets accepted and dropped before and after, over one slice of time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Start of the slice, ns since the epoch.
    pub start_ns: u64,
    /// Accepted before the revoke.
    pub accepted_before: u64,
    /// Accepted after.
    pub accepted_after: u64,
    /// Total packets in the slice.
    pub total: u64,
}

/// The whole report (its JSON form is PRODUCT.md's contract).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The provider.
    pub provider: Provider,
    /// The API response body (JSON form), as the cloud would return it.
    pub response: serde_json::Value,
    /// HTTP status of the response.
    pub status: u16,
    /// The error code when the API would reject the request (then nothing else happens).
    pub error: Option<String>,
    /// The rules the revoke removes (PRODUCT.md `rules` shape).
    pub revoked_rules: Vec<serde_json::Value>,
    /// Totals over the traffic.
    pub packets: Totals,
    /// Packet verdicts by transition.
    pub changed: Changed,
    /// Flows whose verdict changes, most packets first.
    pub flows: Vec<Flow>,
    /// Per-rule hits before and after, for rules of the groups on judged ENIs.
    pub rules: Vec<Hits>,
    /// Rules that decided no judged packet before the revoke.
    pub rules_without_hits: Vec<RuleId>,
    /// The exact header-space difference, from the rules alone.
    pub header_space: Vec<Region>,
    /// What connection tracking means for this revoke.
    pub caveats: Vec<String>,
    /// Agreement with flow logs, when flow logs were given.
    pub flow_log_agreement: Option<Agreement>,
    /// Packets over time (when the traffic has timestamps), in equal buckets.
    pub timeline: Vec<Bucket>,
    /// Things worth knowing (provider warnings, traffic that touched no ENI, …).
    pub warnings: Vec<String>,
}

/// The part of the report that depends on the request alone: the response, the revoked
/// rules, the header-space difference and the caveats. `rule_json` renders a rule in the
/// `sgsim rules` shape ([`crate::provider::rule_json`]).
pub fn skeleton(
    before: &State,
    outcome: &Outcome,
    header_space: Vec<Region>,
    rule_json: impl Fn(&State, &Rule) -> serde_json::Value,
) -> Report {
    let caveats = caveats(before, outcome, &header_space);
    Report {
        provider: outcome.provider,
        response: outcome.json.clone(),
        status: outcome.status,
        error: outcome.error.as_ref().map(|e| e.code.clone()),
        revoked_rules: outcome
            .revoked
            .iter()
            .map(|r| rule_json(before, r))
            .collect(),
        packets: Totals::default(),
        changed: Changed::default(),
        flows: Vec::new(),
        rules: Vec::new(),
        rules_without_hits: Vec::new(),
        header_space,
        caveats,
        flow_log_agreement: None,
        timeline: Vec::new(),
        warnings: outcome.warnings.clone(),
    }
}

fn caveats(before: &State, outcome: &Outcome, regions: &[Region]) -> Vec<String> {
    let mut out = Vec::new();
    if outcome.error.is_some() || outcome.revoked.is_empty() {
        return out;
    }
    let closes = regions.iter().any(|r| r.before.action == Action::Accept);
    let opens = regions.iter().any(|r| r.before.action == Action::Drop);
    match outcome.provider {
        Provider::Aws => {
            if closes {
                out.push(
                    "AWS: connections already tracked when the rule is revoked keep flowing until \
                     they go idle (TCP established: 5 days by default, 350 s on some Nitro types; \
                     UDP: 30 s, 180 s for streams); only new connections are refused at once."
                        .to_string(),
                );
                // Untracked flows: an allow of 0.0.0.0/0 (or ::/0) on all ports both ways.
                let untracked: Vec<&Rule> = outcome
                    .revoked
                    .iter()
                    .filter(|r| {
                        matches!(&r.remote, crate::model::Peer::Cidr { cidr } if cidr.is_any())
                            && r.protocol.has_ports()
                            || r.protocol == crate::model::Protocol::Any
                    })
                    .filter(|r| {
                        before.rules.iter().any(|o| {
                            o.group == r.group
                                && o.direction != r.direction
                                && matches!(&o.remote, crate::model::Peer::Cidr { cidr } if cidr.is_any())
                                && o.dst_ports.is_any()
                                && (o.protocol == r.protocol
                                    || o.protocol == crate::model::Protocol::Any)
                        })
                    })
                    .collect();
                if !untracked.is_empty() {
                    out.push(format!(
                        "AWS: {} allowed traffic from/to anywhere while the other direction is open to \
                         anywhere on all ports, so those flows are untracked: they are cut immediately \
                         when the rule goes, established or not.",
                        untracked
                            .iter()
                            .map(|r| r.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        Provider::Aliyun => {
            if closes || opens {
                out.push(
                    "Alibaba: established sessions (up to 910 s) survive a rule change only when the \
                     verdict for their traffic stays the same; sessions in the changed regions may be \
                     cut at once."
                        .to_string(),
                );
            }
        }
        Provider::Generic => {}
    }
    out
}

/// Adds the traffic sections to a report from judged traffic.
pub fn add_traffic(report: &mut Report, before: &State, judged: &[Judged]) {
    let mut tally = Tally::default();
    for j in judged {
        tally.add(j);
    }
    tally.finish(report, before);
}

/// Accumulates judged traffic in memory proportional to the changed flows and the seconds
/// the traffic spans, not to its length.
#[derive(Default)]
pub struct Tally {
    totals: Totals,
    changed: Changed,
    hits_before: HashMap<RuleId, u64>,
    hits_after: HashMap<RuleId, u64>,
    flows: BTreeMap<(EniId, Direction, Header), Flow>,
    agreement: Agreement,
    enis: BTreeSet<EniId>,
    /// Per second: (total, accepted before, accepted after).
    seconds: BTreeMap<u64, (u64, u64, u64)>,
}

impl Tally {
    /// Counts one judged item.
    pub fn add(&mut self, j: &Judged) {
        if !self.enis.contains(&j.eni) {
            self.enis.insert(j.eni.clone());
        }
        let n = j.packets;
        let t = &mut self.totals;
        t.judged += n;
        match j.before.action {
            Action::Accept => t.accepted_before += n,
            Action::Drop => t.dropped_before += n,
        }
        match j.after.action {
            Action::Accept => t.accepted_after += n,
            Action::Drop => t.dropped_after += n,
        }
        if let Some(r) = &j.before.rule {
            *self.hits_before.entry(r.clone()).or_default() += n;
        }
        if let Some(r) = &j.after.rule {
            *self.hits_after.entry(r.clone()).or_default() += n;
        }
        if let Some(time) = j.time_ns {
            let s = self.seconds.entry(time / 1_000_000_000).or_default();
            s.0 += n;
            s.1 += if j.before.action == Action::Accept {
                n
            } else {
                0
            };
            s.2 += if j.after.action == Action::Accept {
                n
            } else {
                0
            };
        }
        if let Some(logged) = j.logged {
            let a = &mut self.agreement;
            a.records += 1;
            if logged == j.before.action {
                a.agree += 1;
            } else if logged == Action::Accept {
                a.logged_accept_model_drop += 1;
            } else {
                a.logged_reject_model_accept += 1;
                if let Some(why) = &j.reject_reason {
                    *a.logged_reject_reasons.entry(why.clone()).or_default() += 1;
                }
            }
        }
        if j.before.action == j.after.action {
            return;
        }
        match j.before.action {
            Action::Accept => self.changed.accept_to_drop += n,
            Action::Drop => self.changed.drop_to_accept += n,
        }
        let flow = self
            .flows
            .entry((j.eni.clone(), j.direction, j.header))
            .or_insert_with(|| Flow {
                eni: j.eni.clone(),
                direction: j.direction,
                src: j.header.src.to_string(),
                dst: j.header.dst.to_string(),
                protocol: j.header.protocol,
                src_port: j.header.src_port,
                dst_port: j.header.dst_port,
                packets: 0,
                bytes: 0,
                first_seen_ns: j.time_ns,
                last_seen_ns: j.time_ns,
                before: j.before.clone(),
                after: j.after.clone(),
            });
        flow.packets += n;
        flow.bytes += j.bytes;
        flow.first_seen_ns = min_opt(flow.first_seen_ns, j.time_ns);
        flow.last_seen_ns = flow.last_seen_ns.max(j.time_ns);
    }

    /// Writes the traffic sections into the report.
    pub fn finish(self, report: &mut Report, before: &State) {
        let mut flows: Vec<Flow> = self.flows.into_values().collect();
        flows.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.eni.cmp(&b.eni)));
        // Rules of the groups on judged ENIs, in state order.
        let groups: BTreeSet<_> = before
            .enis
            .iter()
            .filter(|e| self.enis.contains(&e.id))
            .flat_map(|e| e.groups.iter().cloned())
            .collect();
        let mut rules = Vec::new();
        let mut without = Vec::new();
        for r in before.rules.iter().filter(|r| groups.contains(&r.group)) {
            let b = self.hits_before.get(&r.id).copied().unwrap_or(0);
            let a = self.hits_after.get(&r.id).copied().unwrap_or(0);
            if b == 0 {
                without.push(r.id.clone());
            }
            rules.push(Hits {
                rule_id: r.id.clone(),
                before: b,
                after: a,
            });
        }
        let mut agreement = self.agreement;
        if agreement.records > 0 {
            agreement.ratio = agreement.agree as f64 / agreement.records as f64;
            report.flow_log_agreement = Some(agreement);
        }
        report.timeline = timeline(&self.seconds, 60);
        report.packets = self.totals;
        report.changed = self.changed;
        report.flows = flows;
        report.rules = rules;
        report.rules_without_hits = without;
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Splits the traffic's time span (per-second counts) into at most `n` equal buckets.
fn timeline(seconds: &BTreeMap<u64, (u64, u64, u64)>, n: u64) -> Vec<Bucket> {
    let (Some((&lo, _)), Some((&hi, _))) = (seconds.first_key_value(), seconds.last_key_value())
    else {
        return Vec::new();
    };
    let width = ((hi - lo) / n).max(1);
    let count = (hi - lo) / width + 1;
    let mut out: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start_ns: (lo + i * width) * 1_000_000_000,
            ..Bucket::default()
        })
        .collect();
    for (&s, &(total, before, after)) in seconds {
        let b = &mut out[((s - lo) / width) as usize];
        b.total += total;
        b.accepted_before += before;
        b.accepted_after += after;
    }
    out
}
