//! Provider-neutral rules, security groups, ENIs, prefix lists and VPCs, as validated values.
//!
//! Every provider's export is turned into a [`State`] once, at the boundary; nothing
//! downstream re-checks a prefix length or a port range, because a [`Cidr`] cannot exceed
//! its family and a [`PortRange`] cannot be reversed.
//!
//! A [`Rule`] is *atomic*: one protocol, one port box, one peer. AWS's grouped
//! `IpPermission` and Alibaba's `Permission` both expand into atomic rules at import.
//! Rule order inside a [`State`] is meaningful only as the final tie-break of evaluation
//! (see [`crate::classify`]).

mod addr;
mod header;
mod protocol;
pub mod time;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use addr::{mask128, mask32, normalize_addr, Cidr, Family, PortRange, Protocol};
pub use header::Header;
pub use protocol::IpProtocol;

/// Why a value could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// A prefix length longer than the address family allows.
    #[error("prefix length /{len} exceeds the family's maximum of /{max}")]
    PrefixTooLong {
        /// The length given.
        len: u8,
        /// The family's maximum.
        max: u8,
    },
    /// Text that is not a CIDR block or address.
    #[error("'{0}' is not a CIDR block or IP address")]
    BadCidr(String),
    /// A range whose low end is above its high end.
    #[error("range {lo}-{hi} is reversed")]
    ReversedRange {
        /// Low end given.
        lo: u16,
        /// High end given.
        hi: u16,
    },
    /// Text that is not a port range.
    #[error("'{0}' is not a port range (expected N, LO-HI or any)")]
    BadPortRange(String),
    /// Text that is not a protocol.
    #[error("'{0}' is not a protocol (expected a name such as tcp, a number 0-255, or -1/all)")]
    BadProtocol(String),
    /// Text that is not a packet header.
    #[error("'{text}' is not a packet header: {why}")]
    BadHeader {
        /// The text given.
        text: String,
        /// What was wrong.
        why: String,
    },
    /// A rule whose fields contradict each other.
    #[error("rule {rule}: {why}")]
    BadRule {
        /// The rule's ID.
        rule: String,
        /// What was wrong.
        why: String,
    },
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The ID as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(Arc::from(s))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(Arc::from(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", &*self.0)
            }
        }
    };
}

id_type!(
    /// A rule's ID (`sgr-…` from the provider, or one sgsim assigned at import).
    RuleId
);
id_type!(
    /// A security group's ID (`sg-…`).
    GroupId
);
id_type!(
    /// A network interface's ID (`eni-…`).
    EniId
);
id_type!(
    /// A prefix list's ID (`pl-…`).
    PrefixListId
);
id_type!(
    /// A VPC's ID (`vpc-…`).
    VpcId
);

/// Which way a rule looks: at packets arriving at the ENI, or leaving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Packets arriving at the ENI; the remote peer is the packet's source.
    Ingress,
    /// Packets leaving the ENI; the remote peer is the packet's destination.
    Egress,
}

impl Direction {
    /// Both directions, ingress first.
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    /// `ingress` or `egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule does with the packets it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let the packet through.
    Accept,
    /// Discard it silently.
    Drop,
}

impl Action {
    /// `accept` or `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Drop => "drop",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's priority: smaller is evaluated first. Providers map their own ranges onto it
/// (Alibaba 1..=100; AWS has none and uses 0; ClassBench uses the line number).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Priority(pub u32);

impl Priority {
    /// A priority a snapshot did not give; [`State::normalize`] replaces it with the
    /// provider's default (Alibaba 1, others 0).
    pub const UNSET: Priority = Priority(u32::MAX);

    /// [`Priority::UNSET`], for serde.
    pub fn unset() -> Priority {
        Priority::UNSET
    }
}

/// Whose semantics a security group follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// AWS EC2: allow-only rules, union, default deny.
    Aws,
    /// Alibaba Cloud ECS: accept/drop rules by priority, implicit defaults by group type.
    Aliyun,
    /// A plain first-match list with a default drop (ClassBench, tests).
    Generic,
}

/// Alibaba's group types. AWS groups are `Basic`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// Basic (`normal`): members may talk to each other (per the inner-access policy),
    /// outbound allowed by default.
    #[default]
    Basic,
    /// Enterprise (advanced): everything denied by default, members isolated.
    Enterprise,
}

/// The other side of a rule: the packet's remote address must fall in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Peer {
    /// A CIDR block.
    Cidr {
        /// The block.
        cidr: Cidr,
    },
    /// The private IPs of the ENIs in a security group.
    Group {
        /// The referenced group.
        group_id: GroupId,
        /// The group's owner account, when the reference names one.
        #[serde(default)]
        owner: Option<String>,
    },
    /// The entries of a prefix list.
    PrefixList {
        /// The referenced list.
        prefix_list_id: PrefixListId,
    },
}

impl Peer {
    /// A CIDR peer.
    pub fn cidr(cidr: Cidr) -> Peer {
        Peer::Cidr { cidr }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Cidr { cidr } => write!(f, "{cidr}"),
            Peer::Group { group_id, .. } => write!(f, "{group_id}"),
            Peer::PrefixList { prefix_list_id } => write!(f, "{prefix_list_id}"),
        }
    }
}

/// ICMP type and code selectors; `None` means any. A rule stores them as its port ranges
/// (type in `src_ports`, code in `dst_ports`), see [`Header`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IcmpSel {
    /// The ICMP type, or any.
    pub ty: Option<u8>,
    /// The ICMP code, or any.
    pub code: Option<u8>,
}

impl IcmpSel {
    /// Any type, any code.
    pub const ANY: IcmpSel = IcmpSel {
        ty: None,
        code: None,
    };

    /// The (type, code) selectors as the (source, destination) port ranges a rule stores.
    pub fn ranges(&self) -> (PortRange, PortRange) {
        let r = |v: Option<u8>| v.map_or(PortRange::ANY, |x| PortRange::single(x.into()));
        (r(self.ty), r(self.code))
    }

    /// Reads selectors back from a rule's port ranges; `None` when a range is neither a
    /// single value 0..=255 nor any.
    pub fn from_ranges(src: PortRange, dst: PortRange) -> Option<IcmpSel> {
        let sel = |p: PortRange| -> Option<Option<u8>> {
            if p.is_any() {
                Some(None)
            } else if p.lo() == p.hi() {
                u8::try_from(p.lo()).ok().map(Some)
            } else {
                None
            }
        };
        Some(IcmpSel {
            ty: sel(src)?,
            code: sel(dst)?,
        })
    }
}

fn any_ports() -> PortRange {
    PortRange::ANY
}

fn is_any_ports(p: &PortRange) -> bool {
    p.is_any()
}

/// One atomic rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The rule's ID.
    pub id: RuleId,
    /// The group that owns it.
    pub group: GroupId,
    /// Which way it looks.
    pub direction: Direction,
    /// What it does.
    pub action: Action,
    /// Smaller first. Absent in a snapshot: [`Priority::UNSET`] until
    /// [`State::normalize`] gives the provider's default.
    #[serde(default = "Priority::unset")]
    pub priority: Priority,
    /// The protocol it selects.
    pub protocol: Protocol,
    /// Source ports (Alibaba quintuple rules; ClassBench); any otherwise. On ICMP rules:
    /// the ICMP type.
    #[serde(default = "any_ports", skip_serializing_if = "is_any_ports")]
    pub src_ports: PortRange,
    /// Destination ports (TCP/UDP service ports). On ICMP rules: the ICMP code.
    #[serde(default = "any_ports", skip_serializing_if = "is_any_ports")]
    pub dst_ports: PortRange,
    /// The remote side: the packet's source for ingress, destination for egress.
    pub remote: Peer,
    /// The local side (Alibaba quintuple rules; ClassBench destination): `None` is any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<Cidr>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Provider attributes carried through unchanged, not used by evaluation
    /// (NicType, CreateTime, original text…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

impl Rule {
    /// Checks that the fields agree with each other: a local prefix of the same family as a
    /// CIDR peer.
    pub fn validate(&self) -> Result<(), ValueError> {
        if let (Peer::Cidr { cidr }, Some(local)) = (&self.remote, &self.local) {
            if cidr.family() != local.family() {
                return Err(ValueError::BadRule {
                    rule: self.id.to_string(),
                    why: format!("remote {cidr} and local {local} are of different families"),
                });
            }
        }
        Ok(())
    }

    /// Whether the rule's own fields (everything but the peer, which needs the state to
    /// resolve) select this header.
    pub fn matches_fields(&self, h: &Header) -> bool {
        self.protocol.matches(h.protocol())
            && self.src_ports.contains(h.src_port())
            && self.dst_ports.contains(h.dst_port())
            && self
                .local
                .as_ref()
                .is_none_or(|l| l.contains(h.local(self.direction)))
    }
}

/// A security group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// The group's ID.
    pub id: GroupId,
    /// Whose semantics it follows.
    pub provider: Provider,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Basic or enterprise (Alibaba).
    #[serde(default)]
    pub kind: GroupKind,
    /// Whether members of a basic group reach each other by default (Alibaba).
    #[serde(default = "accept")]
    pub inner_access: Action,
    /// Its VPC; `None` is Alibaba's classic network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<VpcId>,
    /// The owning account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Provider attributes carried through unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

fn accept() -> Action {
    Action::Accept
}

/// A network interface: where security groups are evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eni {
    /// The interface's ID.
    pub id: EniId,
    /// Its private IPs (IPv4 and IPv6); group references resolve to these.
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// Other addresses it owns (public or elastic IPs): they locate the ENI for traffic but
    /// never satisfy a group reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_ips: Vec<IpAddr>,
    /// The groups attached to it, in order.
    #[serde(default)]
    pub groups: Vec<GroupId>,
    /// Its VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<VpcId>,
    /// Provider attributes carried through unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

/// A named set of CIDR blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixList {
    /// The list's ID.
    pub id: PrefixListId,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its entries.
    #[serde(default)]
    pub entries: Vec<Cidr>,
}

/// A VPC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    /// The VPC's ID.
    pub id: VpcId,
    /// Whether it is the account's default VPC (AWS: decides revoke semantics).
    #[serde(default)]
    pub is_default: bool,
}

/// Everything sgsim knows about an account: the input to compilation and to revokes.
///
/// The serialized form is sgsim's snapshot format (`--out` writes it, `--state` reads it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Security groups.
    #[serde(default)]
    pub groups: Vec<SecurityGroup>,
    /// Atomic rules of all groups.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Network interfaces.
    #[serde(default)]
    pub enis: Vec<Eni>,
    /// Prefix lists.
    #[serde(default)]
    pub prefix_lists: Vec<PrefixList>,
    /// VPCs.
    #[serde(default)]
    pub vpcs: Vec<Vpc>,
    /// Provider bookkeeping that must survive a snapshot (Alibaba ClientTokens, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provider_state: BTreeMap<String, serde_json::Value>,
}

/// What is wrong with a state as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Two objects of one kind share an ID.
    #[error("duplicate {kind} ID '{id}'")]
    DuplicateId {
        /// Rule, group, ENI, prefix list or VPC.
        kind: &'static str,
        /// The ID.
        id: String,
    },
    /// A rule belongs to a group the state does not have.
    #[error("rule '{rule}' belongs to unknown group '{group}'")]
    UnknownGroup {
        /// The rule.
        rule: String,
        /// The group it names.
        group: String,
    },
    /// A rule is inconsistent in itself.
    #[error(transparent)]
    Rule(#[from] ValueError),
}

impl State {
    /// Checks the invariants every consumer relies on: unique IDs, rules owned by known
    /// groups, each rule consistent in itself.
    pub fn validate(&self) -> Result<(), StateError> {
        fn unique<'a>(
            kind: &'static str,
            ids: impl Iterator<Item = &'a str>,
        ) -> Result<(), StateError> {
            let mut seen = HashSet::new();
            for id in ids {
                if !seen.insert(id) {
                    return Err(StateError::DuplicateId {
                        kind,
                        id: id.to_string(),
                    });
                }
            }
            Ok(())
        }
        unique("group", self.groups.iter().map(|g| g.id.as_str()))?;
        unique("rule", self.rules.iter().map(|r| r.id.as_str()))?;
        unique("ENI", self.enis.iter().map(|e| e.id.as_str()))?;
        unique(
            "prefix list",
            self.prefix_lists.iter().map(|p| p.id.as_str()),
        )?;
        unique("VPC", self.vpcs.iter().map(|v| v.id.as_str()))?;
        let groups: HashSet<&GroupId> = self.groups.iter().map(|g| &g.id).collect();
        for rule in &self.rules {
            if !groups.contains(&rule.group) {
                return Err(StateError::UnknownGroup {
                    rule: rule.id.to_string(),
                    group: rule.group.to_string(),
                });
            }
            rule.validate()?;
        }
        Ok(())
    }

    /// The group with this ID.
    pub fn group(&self, id: &GroupId) -> Option<&SecurityGroup> {
        self.groups.iter().find(|g| &g.id == id)
    }

    /// The ENI with this ID.
    pub fn eni(&self, id: &EniId) -> Option<&Eni> {
        self.enis.iter().find(|e| &e.id == id)
    }

    /// The prefix list with this ID.
    pub fn prefix_list(&self, id: &PrefixListId) -> Option<&PrefixList> {
        self.prefix_lists.iter().find(|p| &p.id == id)
    }

    /// The VPC with this ID.
    pub fn vpc(&self, id: &VpcId) -> Option<&Vpc> {
        self.vpcs.iter().find(|v| &v.id == id)
    }

    /// The private IPs of every ENI attached to each group, in ENI order.
    pub fn members(&self) -> HashMap<&GroupId, Vec<IpAddr>> {
        let mut out: HashMap<&GroupId, Vec<IpAddr>> = HashMap::new();
        for eni in &self.enis {
            for g in &eni.groups {
                out.entry(g).or_default().extend(eni.ips.iter().copied());
            }
        }
        out
    }

    /// Brings every rule to the form the engines read, whatever wrote it (an export, a
    /// snapshot written by hand or by an older sgsim): AWS rules of protocol `-1` or of a
    /// number other than TCP, UDP, ICMP and ICMPv6 match every port (SEMANTICS 3.1, AWS
    /// ignores the ports of such rules); Alibaba rules without a priority take the
    /// documented default, 1 (others 0), and a local side of `0.0.0.0/0` means any local address,
    /// IPv6 included (SEMANTICS 2.1, Q5). Returns how many rules it read differently from
    /// how they were written (ports or local side).
    pub fn normalize(&mut self) -> usize {
        let providers: HashMap<&GroupId, Provider> =
            self.groups.iter().map(|g| (&g.id, g.provider)).collect();
        let mut changed = 0;
        for r in &mut self.rules {
            let before = (r.src_ports, r.dst_ports, r.local);
            match providers.get(&r.group) {
                Some(Provider::Aws) => {
                    let portless = match r.protocol {
                        Protocol::Any => true,
                        Protocol::Number(n) => {
                            let p = IpProtocol(n);
                            !(p.is_icmp() || p.is_tcp_or_udp())
                        }
                    };
                    if portless {
                        r.src_ports = PortRange::ANY;
                        r.dst_ports = PortRange::ANY;
                    }
                }
                Some(Provider::Aliyun) => {
                    if r.priority == Priority::UNSET {
                        r.priority = Priority(1);
                    }
                    if r.local == Some(Cidr::ANY_V4) {
                        r.local = None;
                    }
                }
                _ => {}
            }
            if r.priority == Priority::UNSET {
                r.priority = Priority(0);
            }
            // A priority a snapshot left out taking its default is no change of meaning.
            if (r.src_ports, r.dst_ports, r.local) != before {
                changed += 1;
            }
        }
        changed
    }

    /// Per rule, whether its peer is *unresolved* (SEMANTICS 3.1): a prefix list the state
    /// does not hold or holds without entries, or a group that no export describes and no
    /// ENI carries. Such a rule may or may not match; engines judge it both ways.
    pub fn unresolved_rules(&self) -> Vec<bool> {
        let groups: HashSet<&GroupId> = self.groups.iter().map(|g| &g.id).collect();
        let carried: HashSet<&GroupId> = self.enis.iter().flat_map(|e| &e.groups).collect();
        let lists: HashMap<&PrefixListId, bool> = self
            .prefix_lists
            .iter()
            .map(|p| (&p.id, p.entries.is_empty()))
            .collect();
        self.rules
            .iter()
            .map(|r| match &r.remote {
                Peer::Cidr { .. } => false,
                Peer::Group { group_id, .. } => {
                    !groups.contains(group_id) && !carried.contains(group_id)
                }
                Peer::PrefixList { prefix_list_id } => {
                    lists.get(prefix_list_id).copied().unwrap_or(true)
                }
            })
            .collect()
    }

    /// This state with every unresolved reference ([`State::unresolved_rules`]) read one
    /// way: as matching nothing (`everything = false`: such rules left out) or as matching
    /// every address of either family (`true`: each becomes an IPv4 and an IPv6 any-address
    /// rule, the IPv6 one with `#v6` after its ID). The two readings whose verdicts decide
    /// whether a verdict is unknown; the oracles of the header-space diff use them.
    pub fn resolved_as(&self, everything: bool) -> State {
        let unresolved = self.unresolved_rules();
        let mut out = self.clone();
        out.rules.clear();
        for (r, &u) in self.rules.iter().zip(&unresolved) {
            if !u {
                out.rules.push(r.clone());
                continue;
            }
            if !everything {
                continue;
            }
            for any in [Cidr::ANY_V4, Cidr::ANY_V6] {
                if r.local.is_some_and(|l| l.family() != any.family()) {
                    continue;
                }
                let mut c = r.clone();
                c.remote = Peer::cidr(any);
                if any.family() == Family::V6 {
                    c.id = format!("{}#v6", r.id).into();
                }
                out.rules.push(c);
            }
        }
        out
    }

    /// The unresolved reference of a peer as text (`sg-…` or `pl-…`), for reports.
    pub fn reference_name(peer: &Peer) -> String {
        match peer {
            Peer::Cidr { cidr } => cidr.to_string(),
            Peer::Group { group_id, .. } => group_id.to_string(),
            Peer::PrefixList { prefix_list_id } => prefix_list_id.to_string(),
        }
    }

    /// Merges another state into this one (used when several export files are given).
    /// Objects whose ID is already present are replaced by the newer one, except rules
    /// and ENIs, which are appended when new. Linear: objects are found by ID in a hash
    /// map.
    pub fn merge(&mut self, other: State) {
        fn upsert<T, K: Eq + std::hash::Hash + Clone>(
            into: &mut Vec<T>,
            from: Vec<T>,
            key: impl Fn(&T) -> &K,
        ) {
            if from.is_empty() {
                return;
            }
            let mut index: HashMap<K, usize> = into
                .iter()
                .enumerate()
                .map(|(i, x)| (key(x).clone(), i))
                .collect();
            for item in from {
                match index.get(key(&item)) {
                    Some(&i) => into[i] = item,
                    None => {
                        index.insert(key(&item).clone(), into.len());
                        into.push(item);
                    }
                }
            }
        }
        upsert(&mut self.groups, other.groups, |g| &g.id);
        upsert(&mut self.enis, other.enis, |e| &e.id);
        upsert(&mut self.prefix_lists, other.prefix_lists, |p| &p.id);
        upsert(&mut self.vpcs, other.vpcs, |v| &v.id);
        let known: HashSet<RuleId> = self.rules.iter().map(|r| r.id.clone()).collect();
        self.rules
            .extend(other.rules.into_iter().filter(|r| !known.contains(&r.id)));
        self.provider_state.extend(other.provider_state);
    }
}

#[cfg(test)]
mod tests;
