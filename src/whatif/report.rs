//! The what-if report: the provider's response, the revoked rules, verdicts on traffic
//! before and after, the flows that flip, rule hits, the exact header-space difference and
//! the stateful caveats.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use std::net::IpAddr;

use crate::classify::Decision;
use crate::model::{Direction, EniId, Family, GroupId, Peer, Provider, Rule, RuleId, State};
use crate::provider::Outcome;
use crate::whatif::space::{Decider, Region};

/// Packet verdicts by transition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Changed {
    /// Accepted before, dropped after.
    pub accept_to_drop: u64,
    /// Dropped before, accepted after.
    pub drop_to_accept: u64,
    /// Accepted or dropped before, unknown after (an unresolved reference decides).
    pub to_unknown: u64,
    /// Unknown before, accepted or dropped after.
    pub from_unknown: u64,
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
    /// Unknown before (an unresolved reference decides).
    pub unknown_before: u64,
    /// Unknown after.
    pub unknown_after: u64,
}

/// A flow (5-tuple at one ENI and direction) whose verdict changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// The ENI where the verdict changes.
    pub eni: EniId,
    /// Its name, when the exports give one.
    pub eni_name: Option<String>,
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
    /// What happens to the connection.
    pub outcome: Effect,
}

/// What the revoke does to one connection (SEMANTICS 3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Packets accepted before are refused after: all of them are lost.
    Broken,
    /// Open at the revoke instant, refused to new connections, kept alive by tracking.
    Surviving,
    /// Packets refused before are accepted after.
    Restored,
    /// A verdict depends on an unresolved reference.
    Unknown,
}

impl Effect {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Broken => "broken",
            Effect::Surviving => "surviving",
            Effect::Restored => "restored",
            Effect::Unknown => "unknown",
        }
    }
}

/// Connections (two-way conversations) by what the revoke does to them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Connections {
    /// Connections judged.
    pub total: u64,
    /// Broken: accepted before, refused after.
    pub broken: u64,
    /// Open at the revoke instant and kept alive although new ones would be refused.
    pub surviving: u64,
    /// Refused before, accepted after.
    pub restored: u64,
    /// A verdict depends on an unresolved reference.
    pub unknown: u64,
    /// Packets of broken connections that are lost.
    pub packets_broken: u64,
    /// Their bytes.
    pub bytes_broken: u64,
    /// Connections finished early, least recently seen first, because more were live at
    /// once than the bound ([`crate::whatif::traffic::Config::max_connections`]): a later
    /// packet or record of one starts a new connection. 0 when memory never ran short.
    pub evicted: u64,
}

/// A security group by ID and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupRef {
    /// The ID.
    pub id: GroupId,
    /// Its name, when the exports give one.
    pub name: Option<String>,
}

/// A client (or, for an egress service, a destination) of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Client {
    /// Its address.
    pub addr: String,
    /// The ENI that owns it, when it is in the state.
    pub eni: Option<EniId>,
    /// That ENI's name.
    pub name: Option<String>,
    /// The name (else the ID) of that ENI's first group.
    pub group: Option<String>,
}

/// One service whose traffic changes: connections to one port of one ENI in one direction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Impact {
    /// The ENI where the verdict changes.
    pub eni: EniId,
    /// Its name (Name tag, instance name, Alibaba NetworkInterfaceName, or description).
    pub eni_name: Option<String>,
    /// The instance it is attached to.
    pub instance: Option<String>,
    /// Its groups.
    pub groups: Vec<GroupRef>,
    /// The direction in which the verdict changes there.
    pub direction: Direction,
    /// `v4` or `v6`.
    pub family: Family,
    /// Protocol number.
    pub protocol: u8,
    /// Destination port of the opener (ICMP: its type; 0 for protocols without ports).
    pub port: u16,
    /// `5432/tcp`, `icmp type 8`, `gre`.
    pub service: String,
    /// Distinct clients of its broken, restored and unknown connections (ingress: openers;
    /// egress: destinations).
    pub clients: u64,
    /// Whether `clients` is exact (it is a lower bound past 65,536).
    pub clients_exact: bool,
    /// The first clients by address (up to the report's top-N).
    pub client_sample: Vec<Client>,
    /// Connections that change (broken + surviving + restored + unknown).
    pub connections: u64,
    /// Broken.
    pub broken: u64,
    /// Surviving.
    pub surviving: u64,
    /// Restored.
    pub restored: u64,
    /// Unknown.
    pub unknown: u64,
    /// Packets that change verdict (broken: lost; restored: gained; surviving, unknown:
    /// all of theirs).
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Packets of the broken connections that are lost (those after the revoke, or all of
    /// a new connection's); the part of `packets` the broken connections count.
    #[serde(default)]
    pub packets_broken: u64,
    /// Their bytes.
    #[serde(default)]
    pub bytes_broken: u64,
    /// First packet of a changed connection (RFC 3339, UTC), when timestamps are known.
    pub first_seen: Option<String>,
    /// Last packet.
    pub last_seen: Option<String>,
    /// The opener's verdict before (of the first changed connection).
    pub before: Decider,
    /// After.
    pub after: Decider,
}

/// A traffic input as the report lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Input {
    /// File name (or `synthetic`).
    pub name: String,
    /// pcap, pcapng, flow log, …
    pub kind: String,
    /// What the decoder says about it.
    pub summary: String,
}

/// Where the state comes from: accounts, regions and VPCs named by the exports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Context {
    /// Owner accounts of the groups.
    pub accounts: Vec<String>,
    /// Regions.
    pub regions: Vec<String>,
    /// VPCs.
    pub vpcs: Vec<String>,
}

/// Names for people, from the exports.
pub struct Names<'s> {
    state: &'s State,
    by_addr: HashMap<IpAddr, usize>,
}

impl<'s> Names<'s> {
    /// Indexes the state's ENIs by address.
    pub fn new(state: &'s State) -> Names<'s> {
        let mut by_addr = HashMap::new();
        for (i, e) in state.enis.iter().enumerate() {
            for &a in e.ips.iter().chain(&e.public_ips) {
                by_addr.entry(crate::model::normalize_addr(a)).or_insert(i);
            }
        }
        Names { state, by_addr }
    }

    /// An ENI's name: its Name tag, its instance's Name tag, Alibaba's
    /// NetworkInterfaceName or InstanceName, else its description.
    pub fn eni(&self, id: &EniId) -> Option<String> {
        let e = self.state.eni(id)?;
        [
            "Name",
            "InstanceName",
            "NetworkInterfaceName",
            "Description",
        ]
        .iter()
        .find_map(|k| e.attrs.get(*k).filter(|v| !v.is_empty()).cloned())
    }

    /// The instance an ENI is attached to.
    pub fn instance(&self, id: &EniId) -> Option<String> {
        let e = self.state.eni(id)?;
        e.attrs.get("InstanceId").filter(|v| !v.is_empty()).cloned()
    }

    /// A group's name.
    pub fn group(&self, id: &GroupId) -> Option<String> {
        self.state.group(id).and_then(|g| g.name.clone())
    }

    /// An ENI's groups, with names.
    pub fn groups(&self, id: &EniId) -> Vec<GroupRef> {
        self.state.eni(id).map_or_else(Vec::new, |e| {
            e.groups
                .iter()
                .map(|g| GroupRef {
                    id: g.clone(),
                    name: self.group(g),
                })
                .collect()
        })
    }

    /// An address with the ENI that owns it.
    pub fn client(&self, addr: IpAddr) -> Client {
        let eni = self.by_addr.get(&addr).map(|&i| &self.state.enis[i]);
        Client {
            addr: addr.to_string(),
            eni: eni.map(|e| e.id.clone()),
            name: eni.and_then(|e| self.eni(&e.id)),
            group: eni
                .and_then(|e| e.groups.first())
                .map(|g| self.group(g).unwrap_or_else(|| g.to_string())),
        }
    }
}

/// Names for the IDs a report mentions outside its named rows (the header space's ENIs,
/// the revoked rules' groups, the rules without hits and their groups), for the human
/// reports only: the JSON keeps its shape, and its rows that carry names carry them
/// themselves. An ID without a name has no entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    /// ENI names ([`Names::eni`]).
    pub enis: BTreeMap<EniId, String>,
    /// Group names.
    pub groups: BTreeMap<GroupId, String>,
    /// The group of each rule without hits.
    pub rule_groups: BTreeMap<RuleId, GroupId>,
}

impl Labels {
    /// An ENI's name.
    pub fn eni(&self, id: &EniId) -> Option<&str> {
        self.enis.get(id).map(String::as_str)
    }

    /// A group's name.
    pub fn group(&self, id: &GroupId) -> Option<&str> {
        self.groups.get(id).map(String::as_str)
    }

    /// A rule's group.
    pub fn rule_group(&self, id: &RuleId) -> Option<&GroupId> {
        self.rule_groups.get(id)
    }
}

impl Report {
    /// Fills [`Report::labels`] from the state before the revoke for every ID the report
    /// mentions: [`skeleton`] calls it, and a caller that adds the traffic sections calls
    /// it again for the rules without hits (one pass over the state's rules, only when
    /// there are some).
    pub fn label(&mut self, before: &State) {
        let names = Names::new(before);
        let labels = &mut self.labels;
        let group = |labels: &mut Labels, g: &GroupId| {
            if !labels.groups.contains_key(g) {
                if let Some(n) = names.group(g).filter(|n| !n.is_empty()) {
                    labels.groups.insert(g.clone(), n);
                }
            }
        };
        for r in &self.header_space {
            for e in &r.enis {
                if !labels.enis.contains_key(e) {
                    if let Some(n) = names.eni(e) {
                        labels.enis.insert(e.clone(), n);
                    }
                }
            }
            for g in &r.remote_except_members {
                group(labels, g);
            }
        }
        for r in &self.revoked_rules {
            if let Some(g) = r["group_id"].as_str() {
                group(labels, &GroupId::from(g));
            }
        }
        let wanted: std::collections::HashSet<&RuleId> = self
            .rules_without_hits
            .iter()
            .filter(|r| !labels.rule_groups.contains_key(*r))
            .collect();
        if !wanted.is_empty() {
            for rule in before.rules.iter().filter(|r| wanted.contains(&r.id)) {
                labels
                    .rule_groups
                    .insert(rule.id.clone(), rule.group.clone());
                group(labels, &rule.group);
            }
        }
    }
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
    /// Records the model cannot judge (an unresolved reference decides).
    pub model_unknown: u64,
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
    /// Connections by what the revoke does to them.
    pub connections: Connections,
    /// Services whose traffic changes, most broken connections first.
    pub impact: Vec<Impact>,
    /// Connections that change, most changed packets first (the top-N; `flows_total`
    /// counts them all).
    pub flows: Vec<Flow>,
    /// Connections that change.
    pub flows_total: u64,
    /// Per-rule hits before and after, for rules of the groups on judged ENIs.
    pub rules: Vec<Hits>,
    /// Rules that decided no judged packet before the revoke.
    pub rules_without_hits: Vec<RuleId>,
    /// The exact header-space difference, from the rules alone.
    pub header_space: Vec<Region>,
    /// Whether `header_space` is the whole answer (false only when a bound of
    /// [`crate::whatif::space::Config`] was reached).
    pub header_space_complete: bool,
    /// When incomplete: how far the header-space computation got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_space_stopped: Option<String>,
    /// What connection tracking means for this revoke.
    pub caveats: Vec<String>,
    /// Agreement with flow logs, when flow logs were given.
    pub flow_log_agreement: Option<Agreement>,
    /// Packets over time (when the traffic has timestamps), in equal buckets.
    pub timeline: Vec<Bucket>,
    /// Things worth knowing (provider warnings, unresolved references, groups no ENI
    /// carries, traffic that touched no ENI, …).
    pub warnings: Vec<String>,
    /// The request as given.
    pub request: Option<String>,
    /// The traffic inputs.
    pub inputs: Vec<Input>,
    /// The revoke instant (RFC 3339, UTC) of each input with traffic.
    pub revoke_at: Vec<String>,
    /// When the analysis ran (RFC 3339, UTC): set by the binary, which may read the clock.
    pub analysed_at: Option<String>,
    /// Accounts, regions and VPCs of the state.
    pub context: Context,
    /// How many rows the human reports show per list.
    pub top: usize,
    /// ENIs of the state that carry a group of a revoked rule: where the header-space
    /// answer applies. 0 with revoked rules means nothing could be judged.
    pub enis_in_scope: usize,
    /// Names for the IDs the human reports show ([`Report::label`]); not in the JSON.
    #[serde(skip)]
    pub labels: Labels,
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
    let mut report = Report {
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
        connections: Connections::default(),
        impact: Vec::new(),
        flows: Vec::new(),
        flows_total: 0,
        rules: Vec::new(),
        rules_without_hits: Vec::new(),
        header_space,
        header_space_complete: true,
        header_space_stopped: None,
        caveats,
        flow_log_agreement: None,
        timeline: Vec::new(),
        warnings: outcome
            .warnings
            .iter()
            .cloned()
            .chain(coverage_warnings(before, outcome))
            .collect(),
        enis_in_scope: before
            .enis
            .iter()
            .filter(|e| outcome.revoked.iter().any(|r| e.groups.contains(&r.group)))
            .count(),
        request: None,
        inputs: Vec::new(),
        revoke_at: Vec::new(),
        analysed_at: None,
        context: context(before),
        top: 20,
        labels: Labels::default(),
    };
    report.label(before);
    report
}

/// The accounts, regions and VPCs the state names.
fn context(state: &State) -> Context {
    let mut accounts = BTreeSet::new();
    let mut regions = BTreeSet::new();
    let mut vpcs = BTreeSet::new();
    for g in &state.groups {
        if let Some(o) = &g.owner {
            accounts.insert(o.clone());
        }
        if let Some(v) = &g.vpc {
            vpcs.insert(v.to_string());
        }
        if let Some(r) = g.attrs.get("RegionId") {
            regions.insert(r.clone());
        }
    }
    for e in &state.enis {
        if let Some(v) = &e.vpc {
            vpcs.insert(v.to_string());
        }
        if let Some(o) = e.attrs.get("OwnerId") {
            accounts.insert(o.clone());
        }
        for k in ["RegionId", "AvailabilityZone", "ZoneId"] {
            if let Some(r) = e.attrs.get(k) {
                regions.insert(r.clone());
            }
        }
    }
    Context {
        accounts: accounts.into_iter().collect(),
        regions: regions.into_iter().collect(),
        vpcs: vpcs.into_iter().collect(),
    }
}

/// Nanoseconds since the Unix epoch as RFC 3339 UTC, to the second (`2026-12-06T14:45:00Z`).
pub fn rfc3339(ns: u64) -> String {
    let (y, m, d, hh, mm, ss) = crate::model::time::civil((ns / 1_000_000_000) as i64);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// What would make an empty answer silently wrong (issue: "no silent nothing changes"):
/// a state without ENIs, a revoked rule's group that no ENI carries, and references of
/// the revoked rules' groups that the state cannot resolve or that resolve to no member.
fn coverage_warnings(before: &State, outcome: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    if outcome.error.is_some() {
        return out;
    }
    if before.enis.is_empty() {
        out.push(
            "the state holds no network interface, so no packet can be judged: export \
             describe-network-interfaces (AWS) or DescribeNetworkInterfaces (Alibaba) too"
                .to_string(),
        );
        return out;
    }
    let carried: BTreeSet<&GroupId> = before.enis.iter().flat_map(|e| &e.groups).collect();
    let groups: BTreeSet<&GroupId> = outcome.revoked.iter().map(|r| &r.group).collect();
    for g in &groups {
        if !carried.contains(g) {
            out.push(format!(
                "group {g} is attached to no network interface of the state: its revoked rules \
                 change no verdict here (export the interfaces that carry it to see their traffic)"
            ));
        }
    }
    let unresolved = before.unresolved_rules();
    let mut seen = BTreeSet::new();
    for (r, rule) in before.rules.iter().enumerate() {
        if !groups.contains(&rule.group) {
            continue;
        }
        let name = State::reference_name(&rule.remote);
        if unresolved[r] {
            if seen.insert(name.clone()) {
                out.push(format!(
                    "{name} (in rule {} and maybe others) is unresolved: no export describes it; \
                     verdicts it could decide are reported as unknown",
                    rule.id
                ));
            }
        } else if let Peer::Group { group_id, .. } = &rule.remote {
            if !carried.contains(group_id) && seen.insert(name.clone()) {
                out.push(format!(
                    "group {group_id} (referenced by rule {}) has no member in the state: the \
                     reference matches no address here",
                    rule.id
                ));
            }
        }
    }
    out
}

fn caveats(before: &State, outcome: &Outcome, regions: &[Region]) -> Vec<String> {
    let mut out = Vec::new();
    if outcome.error.is_some() || outcome.revoked.is_empty() {
        return out;
    }
    let closes = regions.iter().any(|r| r.before.action == Decision::Accept);
    let opens = regions.iter().any(|r| r.before.action == Decision::Drop);
    match outcome.provider {
        Provider::Aws => {
            if closes {
                out.push(
                    "AWS: connections already tracked when the rule is revoked keep flowing until \
                     they go idle (TCP established: 5 days by default, 350 s on some Nitro types; \
                     UDP: 30 s, 180 s for streams); only new connections are refused at once."
                        .to_string(),
                );
                // Untracked flows: the tracker's own definition, per ENI (AWS aggregates
                // every group on the ENI).
                let untracked: Vec<String> = outcome
                    .revoked
                    .iter()
                    .filter_map(|r| {
                        let enis = crate::track::untracked_enis(before, r);
                        (!enis.is_empty()).then(|| {
                            let shown: Vec<String> =
                                enis.iter().take(5).map(|e| e.to_string()).collect();
                            let more = if enis.len() > 5 {
                                format!(" and {} more", enis.len() - 5)
                            } else {
                                String::new()
                            };
                            format!("{} (on {}{more})", r.id, shown.join(", "))
                        })
                    })
                    .collect();
                if !untracked.is_empty() {
                    out.push(format!(
                        "AWS: {} allowed traffic from/to anywhere while the other direction is open \
                         to anywhere for its replies, one of the two on all ports, so those flows are \
                         untracked: they are cut immediately when the rule goes, established or not.",
                        untracked.join("; ")
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

/// Splits the traffic's time span (per-second counts) into at most `n` equal buckets.
pub(crate) fn timeline(seconds: &BTreeMap<u64, (u64, u64, u64)>, n: u64) -> Vec<Bucket> {
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
