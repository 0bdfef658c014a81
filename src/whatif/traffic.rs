//! Traffic before and after a revoke, by connection: what users lose.
//!
//! # The connection model (SEMANTICS 3.4, decision of 2026-12-06)
//!
//! The revoke takes effect at one instant, [`Config::at_ns`] (default: the time of the first
//! packet or record of each input). A *connection* is a two-way conversation keyed by its
//! 5-tuple with the two endpoints in a canonical order (flow-log records also by their ENI,
//! as each ENI logs its own records): TCP is opened by a SYN and closed by an RST or a FIN
//! from each side; TCP, UDP, ICMP echo and other protocols end when idle past their
//! provider's timeout ([`crate::track`]'s table). ICMP other than echo (errors,
//! router messages) is never tracked: each such exchange is judged by the rules alone.
//!
//! The *opener* of a connection is the sender of its SYN (the receiver of a SYN-ACK), the
//! sender of an echo request, and otherwise the sender of its first packet, unless the rules
//! before the revoke refuse that direction and accept the other (a connection first seen
//! by a reply, as a capture started mid-stream or a flow-log window shows it). The opener
//! was *captured* when the connection's first packet is its SYN (UDP, ICMP and other
//! protocols: its first packet goes the opener's way).
//!
//! A connection crosses one or two points (egress at the ENI of the opener's address,
//! ingress at the ENI of the other; a flow-log record only its logged ENI). In each world
//! (before, after) it is judged once, from its two headers:
//!
//! - the opener's direction passes when every point accepts it by the rules;
//! - the reply direction passes when the opener's did and every point either tracks the
//!   connection (replies pass as `established`) or accepts the reply by the rules (AWS
//!   untracked flows, SEMANTICS 3.2, and untracked ICMP);
//! - a direction refused anywhere is refused; otherwise one whose verdict depends on an
//!   unresolved reference is unknown; a refused opener means the reply does not exist
//!   either: it is lost with it.
//!
//! Every packet of a connection before the revoke instant, and every packet of every
//! connection in the world before, takes its direction's verdict of the world before. From
//! the revoke instant on, a connection whose opener was captured at or after it is *new*
//! and takes the verdicts of the world after. A connection *open* at the revoke instant
//! (opened before it, or whose opening was not captured) follows its provider:
//!
//! - AWS (and the generic provider): at a point that tracks it, it keeps its verdicts and
//!   survives until idle; at a point where it is untracked (judged on the state before) its
//!   packets are judged by the rules after, so it is cut at once if they refuse it;
//! - Alibaba: it keeps its verdicts when the rules give each of its directions the same
//!   action after as before at every point, and is judged as new otherwise (cut when the
//!   verdict turns to drop); [`Config::assume_survive`] keeps its verdicts whatever.
//!
//! A connection is **broken** when a packet accepted before is refused after (every such
//! packet and byte is lost); **restored** when a packet refused before is accepted after;
//! **unknown** when a packet's verdict is unknown in one world and not in the other;
//! **surviving** when it is open at
//! the revoke instant, carries packets after it, and survives although the rules after
//! would refuse it as a new connection. Per-packet transitions, rule hits and the timeline
//! are counted from the same verdicts.
//!
//! # Cost and memory
//!
//! Each connection is judged once per world when it is first seen (two to eight lookups);
//! each packet costs one probe of its partition's connection table and a few counters.
//! Items are routed to [`Config::partitions`] partitions by a hash of their connection key
//! and the partitions run on the rayon pool, each in input order, so the result does not
//! depend on the number of partitions (the tests check it against a plain per-packet
//! replay). Finished connections are folded into per-service totals and a top-N of changed
//! connections ([`Config::top`]); memory follows the live connections, the services and N,
//! not the number of changed flows.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use hashbrown::hash_table::{Entry, HashTable};
use rayon::prelude::*;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::classify::{By, Decision, Engine, Named, Point, SemanticsError};
use crate::compile::{compile, CompileError, Table};
use crate::model::{Action, Direction, EniId, Header, IpProtocol, Provider, State};
use crate::packet::{Item, Packet, Source, TrafficError};
use crate::track::{self, is_echo_reply, is_echo_request, EniInfo};
use crate::whatif::report::{
    self, Agreement, Changed, Connections, Effect, Flow, Hits, Impact, Report, Totals,
};

const SECOND: u64 = 1_000_000_000;
/// Below this many items per sub-chunk, routing is not split further.
const MIN_SUB_CHUNK: usize = 2048;
/// At most this many non-first fragment keys are remembered.
const MAX_FRAGMENTS: usize = 65536;
/// Distinct clients remembered per service; beyond, the count is a lower bound.
pub const MAX_CLIENTS: usize = 65536;
/// Idle connections are swept once the clock has moved this far since the last sweep.
const SWEEP_EVERY: u64 = 30 * SECOND;
/// A closed TCP connection is forgotten this long after its last packet (its last ACKs
/// still belong to it).
const CLOSED_TIMEOUT: u64 = 120 * SECOND;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

/// What-if options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The revoke instant, ns since the Unix epoch; `None`: the first packet or record of
    /// each input.
    pub at_ns: Option<u64>,
    /// Alibaba: sessions open at the revoke instant survive even when the verdict for their
    /// traffic changes (the default cuts them, SEMANTICS Q9).
    pub assume_survive: bool,
    /// Changed connections listed in `flows`, and clients sampled per service.
    pub top: usize,
    /// Connection partitions (1 = sequential).
    pub partitions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            at_ns: None,
            assume_survive: false,
            top: 20,
            partitions: 16,
        }
    }
}

/// Why traffic cannot be judged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A state cannot be compiled.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A state cannot be evaluated (an ENI mixes providers or group kinds).
    #[error(transparent)]
    Semantics(#[from] SemanticsError),
    /// A traffic input cannot be read.
    #[error("{input}: {source}")]
    Traffic {
        /// The input's name.
        input: String,
        /// What went wrong.
        source: TrafficError,
    },
}

/// An action of either world, or unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Act {
    Accept,
    Drop,
    Unknown,
}

fn act(d: Decision) -> Act {
    match d {
        Decision::Accept => Act::Accept,
        Decision::Drop => Act::Drop,
        Decision::Unknown => Act::Unknown,
    }
}

/// What decided a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Why {
    /// A rule, by index in the table of the step's world.
    Rule(u32),
    Default,
    InnerAccess,
    /// A reply of a tracked connection.
    Established,
    /// The reply of a connection whose opener was refused: it never exists.
    Lost,
    /// Unknown because of this rule's unresolved reference.
    Unresolved(u32),
    /// Unknown: an ICMP flow-log record whose type the log does not carry.
    UnloggedIcmp,
}

/// Which table a [`Why::Rule`] indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Side {
    Before,
    After,
}

/// One direction's verdict in one world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Step {
    act: Act,
    why: Why,
    side: Side,
}

/// The verdicts of one connection, shared by every connection with the same ones
/// (interned per partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Fate {
    /// Opener (0) and reply (1) directions in the world before.
    before: [Step; 2],
    /// From the revoke instant on.
    post: [Step; 2],
    /// The opener's verdict after, as a new connection.
    fresh: Step,
    /// Open at the revoke instant and kept alive although the rules after refuse it.
    survive: bool,
    /// Where the opener's (else the reply's) verdict changes: ENI and direction.
    change: Option<(u32, Direction)>,
    provider: Provider,
    /// Touches no ENI of the state: counted, not judged.
    unmatched: bool,
    /// The ENIs the opener leaves and reaches.
    ends: Ends,
}

impl Step {
    /// One word: action, side, what decided, and the rule's index.
    fn pack(self) -> u64 {
        let act = match self.act {
            Act::Accept => 0u64,
            Act::Drop => 1,
            Act::Unknown => 2,
        };
        let side = u64::from(self.side == Side::After);
        let (why, index) = match self.why {
            Why::Rule(i) => (0u64, i),
            Why::Default => (1, 0),
            Why::InnerAccess => (2, 0),
            Why::Established => (3, 0),
            Why::Lost => (4, 0),
            Why::Unresolved(i) => (5, i),
            Why::UnloggedIcmp => (6, 0),
        };
        act | side << 2 | why << 3 | u64::from(index) << 8
    }
}

impl Fate {
    /// Eight words that tell fates apart (equal fates pack equally, and only they).
    fn pack(&self) -> [u64; 8] {
        let end = |e: Option<u32>| e.map_or(u64::MAX, u64::from);
        let change = self.change.map_or(u64::MAX, |(e, d)| {
            u64::from(e) << 1 | u64::from(d == Direction::Egress)
        });
        let provider = match self.provider {
            Provider::Aws => 0u64,
            Provider::Aliyun => 1,
            Provider::Generic => 2,
        };
        [
            self.before[0].pack(),
            self.before[1].pack(),
            self.post[0].pack(),
            self.post[1].pack(),
            self.fresh.pack(),
            change,
            end(self.ends[0]) ^ end(self.ends[1]).rotate_left(32),
            u64::from(self.survive)
                | u64::from(self.unmatched) << 1
                | provider << 2
                | u64::from(self.ends[0].is_none()) << 4
                | u64::from(self.ends[1].is_none()) << 5
                | (end(self.ends[0]) & 0xffff_ffff) << 8,
        ]
    }
}

/// A connection key of one address family: endpoints in canonical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key<A> {
    a: A,
    b: A,
    a_port: u16,
    b_port: u16,
    protocol: u8,
    /// The logging ENI of a flow-log record (`u32::MAX` for packets).
    eni: u32,
}

const FIN_O: u8 = 1;
const FIN_R: u8 = 2;
const RESET: u8 = 4;
/// The last packet went the reply's way.
const LAST_R: u8 = 8;

/// A live connection.
#[derive(Clone, Debug)]
struct Conn<A> {
    key: Key<A>,
    first_ns: u64,
    last_ns: u64,
    /// Whether side `a` of the key is the opener.
    o_is_a: bool,
    flags: u8,
    /// Direction changes, saturating (UDP becomes a stream at 3).
    flips: u8,
    /// Its idle timeout in seconds as of its last packet (provider, protocol, stream,
    /// closed): sweeps read it without looking up the fate.
    idle_s: u32,
    fate: u32,
    /// Packets and bytes by direction (opener, reply) and by time (before, from the revoke
    /// instant).
    packets: [[u64; 2]; 2],
    bytes: [[u64; 2]; 2],
}

/// The ENI and direction where an item is judged, or where a connection's opener crosses.
type Ends = [Option<u32>; 2];

/// Judges traffic against the states before and after a revoke.
pub struct Judge {
    before: Table,
    after: Table,
    before_info: Vec<EniInfo>,
    after_info: Vec<EniInfo>,
    v4: FxHashMap<u32, u32>,
    v6: FxHashMap<u128, u32>,
    eni_ids: HashMap<EniId, u32>,
    /// Per ENI: whether one of its groups loses a rule (elsewhere nothing changes).
    touched: Vec<bool>,
    config: Config,
}

impl Judge {
    /// Compiles both states (the ENIs of `after` are those of `before`: a revoke changes
    /// rules only).
    pub fn new(before: &State, after: &State, config: Config) -> Result<Judge, Error> {
        let cfg = crate::compile::Config::default();
        let (b, a) = rayon::join(|| compile(before, &cfg), || compile(after, &cfg));
        let mut v4 = FxHashMap::default();
        let mut v6 = FxHashMap::default();
        for (i, eni) in before.enis.iter().enumerate() {
            for &addr in eni.ips.iter().chain(&eni.public_ips) {
                match crate::model::normalize_addr(addr) {
                    IpAddr::V4(x) => v4.insert(u32::from(x), i as u32),
                    IpAddr::V6(x) => v6.insert(u128::from(x), i as u32),
                };
            }
        }
        let kept: std::collections::HashSet<&crate::model::RuleId> =
            after.rules.iter().map(|r| &r.id).collect();
        let losing: BTreeSet<&crate::model::GroupId> = before
            .rules
            .iter()
            .filter(|r| !kept.contains(&r.id))
            .map(|r| &r.group)
            .collect();
        let touched = before
            .enis
            .iter()
            .map(|e| e.groups.iter().any(|g| losing.contains(g)))
            .collect();
        Ok(Judge {
            touched,
            before: b?,
            after: a?,
            before_info: track::eni_infos(before)?,
            after_info: track::eni_infos(after)?,
            v4,
            v6,
            eni_ids: before
                .enis
                .iter()
                .enumerate()
                .map(|(i, e)| (e.id.clone(), i as u32))
                .collect(),
            config: Config {
                partitions: config.partitions.max(1),
                ..config
            },
        })
    }

    /// The options.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn eni_of(&self, addr: IpAddr) -> Option<u32> {
        match addr {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)).copied(),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)).copied(),
        }
    }

    fn table(&self, side: Side) -> &Table {
        match side {
            Side::Before => &self.before,
            Side::After => &self.after,
        }
    }

    fn info(&self, side: Side) -> &[EniInfo] {
        match side {
            Side::Before => &self.before_info,
            Side::After => &self.after_info,
        }
    }

    fn step(&self, side: Side, eni: u32, direction: Direction, h: &Header) -> Step {
        let v = self.table(side).classify(Point { eni, direction }, h);
        Step {
            act: act(v.action),
            why: match v.by {
                By::Rule(i) => Why::Rule(i),
                By::InnerAccess(_) => Why::InnerAccess,
                By::Default => Why::Default,
                By::Unresolved(i) => Why::Unresolved(i),
                By::UnloggedIcmp => Why::UnloggedIcmp,
            },
            side,
        }
    }

    /// Whether a connection with opener header `h` is tracked at `eni` (where the opener
    /// crosses in `direction`), in the world `side`.
    fn tracked(&self, side: Side, eni: u32, direction: Direction, h: &Header) -> bool {
        if h.ip_protocol().is_icmp() && !is_echo_request(h) && !is_echo_reply(h) {
            return false;
        }
        !self
            .info(side)
            .get(eni as usize)
            .is_some_and(|i| i.untracked(direction, h))
    }

    /// The per-point verdicts of a connection in one world: the opener at its source's
    /// ENI (egress) and its destination's (ingress), the reply at the same two ENIs.
    ///
    /// `same`: the verdicts of the world before, reused at ENIs the revoke does not touch
    /// (none of their groups lost a rule, so their rules and tracking are unchanged). A
    /// reply is judged only where the opener passes (elsewhere it is lost anyway).
    fn points(
        &self,
        side: Side,
        ends: Ends,
        h: &Header,
        same: Option<&[[Option<Step>; 2]; 2]>,
    ) -> [[Option<Step>; 2]; 2] {
        let r = reverse(h);
        let dirs = [Direction::Egress, Direction::Ingress];
        let mut o = [None; 2];
        let mut rep = [None; 2];
        for i in 0..2 {
            let Some(e) = ends[i] else { continue };
            if let Some(b) = same {
                if !self.touched.get(e as usize).copied().unwrap_or(true) {
                    o[i] = b[0][i];
                    rep[i] = b[1][i];
                    continue;
                }
            }
            let s = self.step(side, e, dirs[i], h);
            o[i] = Some(s);
            rep[i] = Some(if s.act != Act::Accept {
                s
            } else if self.tracked(side, e, dirs[i], h) {
                Step {
                    act: Act::Accept,
                    why: Why::Established,
                    side,
                }
            } else {
                self.step(side, e, dirs[1 - i], &r)
            });
        }
        [o, rep]
    }
}

/// One direction's verdict over its points: refused anywhere, else unknown anywhere, else
/// accepted (the decider: the refusing point, else the last deciding one).
fn combine(points: [Option<Step>; 2]) -> Option<Step> {
    let mut best: Option<Step> = None;
    for s in points.into_iter().flatten() {
        let rank = |s: &Step| match (s.act, s.why) {
            (Act::Drop, _) => 3,
            (Act::Unknown, _) => 2,
            (Act::Accept, Why::Rule(_)) => 1,
            _ => 0,
        };
        if best.is_none_or(|b| rank(&s) >= rank(&b)) {
            best = Some(s);
        }
    }
    best
}

/// Both directions of one world: the reply is lost when the opener is not accepted.
fn world(points: [[Option<Step>; 2]; 2]) -> Option<[Step; 2]> {
    let o = combine(points[0])?;
    let r = if o.act == Act::Accept {
        combine(points[1])?
    } else {
        Step {
            act: o.act,
            why: Why::Lost,
            side: o.side,
        }
    };
    Some([o, r])
}

/// The first point where two worlds' per-point actions differ.
fn change(
    a: &[[Option<Step>; 2]; 2],
    b: &[[Option<Step>; 2]; 2],
    ends: Ends,
) -> Option<(u32, Direction)> {
    let dirs = [
        [Direction::Egress, Direction::Ingress],
        [Direction::Ingress, Direction::Egress],
    ];
    for d in 0..2 {
        for i in 0..2 {
            if let (Some(x), Some(y), Some(e)) = (a[d][i], b[d][i], ends[i]) {
                if x.act != y.act {
                    return Some((e, dirs[d][i]));
                }
            }
        }
    }
    None
}

impl Judge {
    /// The fate of a connection whose opener header is `h`, crossing `ends`; `new`: its
    /// opener was captured at or after the revoke instant.
    fn fate(&self, ends: Ends, h: &Header, new: bool) -> Fate {
        let provider = ends
            .iter()
            .flatten()
            .next()
            .and_then(|&e| self.before_info.get(e as usize))
            .map_or(Provider::Generic, |i| i.provider);
        let pb = self.points(Side::Before, ends, h, None);
        let pa = self.points(Side::After, ends, h, Some(&pb));
        let (Some(before), Some(after)) = (world(pb), world(pa)) else {
            let none = Step {
                act: Act::Drop,
                why: Why::Default,
                side: Side::Before,
            };
            return Fate {
                before: [none; 2],
                post: [none; 2],
                fresh: none,
                survive: false,
                change: None,
                provider,
                unmatched: true,
                ends,
            };
        };
        let fate = Fate {
            before,
            post: after,
            fresh: after[0],
            survive: false,
            change: change(&pb, &pa, ends),
            provider,
            unmatched: false,
            ends,
        };
        if new || before[0].act != Act::Accept {
            return fate;
        }
        let mut fate = self.open_fate(fate, &pb, &pa, ends, h);
        Judge::kept(&mut fate.post);
        fate
    }

    /// The fate of a connection open at the revoke instant (see the module docs).
    fn open_fate(
        &self,
        mut fate: Fate,
        pb: &[[Option<Step>; 2]; 2],
        pa: &[[Option<Step>; 2]; 2],
        ends: Ends,
        h: &Header,
    ) -> Fate {
        let (before, after, provider) = (fate.before, fate.post, fate.provider);
        // Open at the revoke instant.
        match provider {
            Provider::Aliyun => {
                let same = change(pb, pa, ends).is_none() && before[1].act == after[1].act;
                if same || self.config.assume_survive {
                    fate.post = before;
                    fate.survive = after[0].act != Act::Accept;
                }
            }
            Provider::Aws | Provider::Generic => {
                // Tracked points keep the verdicts before; untracked ones take the rules'.
                let dirs = [Direction::Egress, Direction::Ingress];
                let mut mixed = *pb;
                for i in 0..2 {
                    if let Some(e) = ends[i] {
                        if !self.tracked(Side::Before, e, dirs[i], h) {
                            mixed[0][i] = pa[0][i];
                            mixed[1][i] = pa[1][i];
                        }
                    }
                }
                if let Some(post) = world(mixed) {
                    fate.post = post;
                }
                fate.survive = fate.post[0].act == Act::Accept && after[0].act != Act::Accept;
            }
        }
        fate
    }

    /// Verdicts kept from before after the revoke instant: the connection passes as
    /// established, not by a rule (which may be gone).
    fn kept(post: &mut [Step; 2]) {
        for s in post.iter_mut() {
            if s.side == Side::Before && s.act == Act::Accept {
                *s = Step {
                    act: Act::Accept,
                    why: Why::Established,
                    side: Side::After,
                };
            }
        }
    }

    fn named(&self, s: Step) -> Named {
        let t = self.table(s.side);
        let (rule, reason) = match s.why {
            Why::Rule(i) => (t.rules().get(i as usize).cloned(), "rule"),
            Why::Default => (None, "default"),
            Why::InnerAccess => (None, "inner-access"),
            Why::Established => (None, "established"),
            Why::Lost => (None, "lost"),
            Why::Unresolved(i) => (t.rules().get(i as usize).cloned(), "unresolved"),
            Why::UnloggedIcmp => (None, "unresolved"),
        };
        Named {
            action: match s.act {
                Act::Accept => Decision::Accept,
                Act::Drop => Decision::Drop,
                Act::Unknown => Decision::Unknown,
            },
            rule,
            reason,
        }
    }
}

/// An address as the key word of its family.
trait Word: Copy + Eq + Ord + Hash + Send + Sync + std::fmt::Debug {
    fn addr(self) -> IpAddr;
}

impl Word for u32 {
    fn addr(self) -> IpAddr {
        IpAddr::V4(self.into())
    }
}

impl Word for u128 {
    fn addr(self) -> IpAddr {
        let v6 = std::net::Ipv6Addr::from(self);
        IpAddr::V6(v6)
    }
}

/// Whether connections of `protocol` are told apart by ports.
fn ported(h: &Header) -> bool {
    !h.ip_protocol().is_icmp() || !(is_echo_request(h) || is_echo_reply(h))
}

/// The canonical key of a header: (key, whether the source is side `a`).
fn key_of<A: Word>(h: &Header, src: A, dst: A, eni: u32) -> (Key<A>, bool) {
    let (sp, dp) = if ported(h) {
        (h.src_port, h.dst_port)
    } else {
        (0, 0)
    };
    if h.ip_protocol().is_icmp() && ported(h) {
        // Untracked ICMP: one "connection" per addresses and type/code, never canonical.
        return (
            Key {
                a: src,
                b: dst,
                a_port: sp,
                b_port: dp | 0x8000,
                protocol: h.protocol,
                eni,
            },
            true,
        );
    }
    if (src, sp) <= (dst, dp) {
        (
            Key {
                a: src,
                b: dst,
                a_port: sp,
                b_port: dp,
                protocol: h.protocol,
                eni,
            },
            true,
        )
    } else {
        (
            Key {
                a: dst,
                b: src,
                a_port: dp,
                b_port: sp,
                protocol: h.protocol,
                eni,
            },
            false,
        )
    }
}

fn v6_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// An item as the loop sees it.
#[derive(Clone, Copy, Debug)]
struct Seen {
    header: Header,
    ts_ns: u64,
    /// Until when it keeps its connection active: a packet's time, a flow-log record's
    /// window end (it aggregates the window).
    until_ns: u64,
    packets: u64,
    bytes: u64,
    flags: u8,
    /// Flow-log records: the logging ENI and direction.
    record: Option<(Option<u32>, Option<Direction>)>,
    logged: Option<Action>,
    /// The flow log's `reject-reason` (AWS v8), when it gave one: `BPA` (VPC Block Public
    /// Access) is the only documented value; anything else counts as other.
    reject: Option<RejectReason>,
}

/// A `reject-reason` a flow log gave (kept small: the loop copies what it sees).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RejectReason {
    /// VPC Block Public Access.
    Bpa,
    /// A value sgsim does not know.
    Other,
}

impl RejectReason {
    fn of(text: &str) -> RejectReason {
        if text.eq_ignore_ascii_case("BPA") {
            RejectReason::Bpa
        } else {
            RejectReason::Other
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RejectReason::Bpa => "BPA",
            RejectReason::Other => "other",
        }
    }
}

impl Judge {
    fn seen(&self, item: &Item, fixed: Option<Header>) -> Seen {
        match item {
            Item::Packet(p) => Seen {
                header: fixed.unwrap_or(p.header),
                ts_ns: p.ts_ns,
                until_ns: p.ts_ns,
                packets: 1,
                bytes: u64::from(p.wire_len),
                flags: p.tcp_flags.unwrap_or(0),
                record: None,
                logged: None,
                reject: None,
            },
            Item::Flow(r) => Seen {
                header: r.header,
                ts_ns: r.start.saturating_mul(SECOND),
                until_ns: r.end.max(r.start).saturating_mul(SECOND),
                packets: r.packets.max(1),
                bytes: r.bytes,
                flags: r.tcp_flags.unwrap_or(0),
                record: Some((
                    r.eni.as_ref().and_then(|id| self.eni_ids.get(id).copied()),
                    r.direction,
                )),
                logged: r.action,
                reject: r.reject_reason.as_deref().map(RejectReason::of),
            },
        }
    }

    /// The key ENI of an item (records: their logging ENI).
    fn key_eni(s: &Seen) -> u32 {
        match s.record {
            Some((Some(e), _)) => e,
            _ => u32::MAX,
        }
    }

    fn hash(&self, s: &Seen) -> u64 {
        let eni = Judge::key_eni(s);
        let h = &s.header;
        match (h.src, h.dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                FxBuildHasher.hash_one(key_of(h, u32::from(a), u32::from(b), eni).0)
            }
            (a, b) => FxBuildHasher.hash_one(key_of(h, v6_bits(a), v6_bits(b), eni).0),
        }
    }

    /// The ENIs of a connection's opener `h` (source side, destination side), from the
    /// first item seen (`s`, whose header is `h` or its reverse).
    fn ends(&self, s: &Seen, h: &Header, reversed: bool) -> Ends {
        match s.record {
            None => [self.eni_of(h.src), self.eni_of(h.dst)],
            Some((eni, direction)) => {
                let owns = |e: u32, a: IpAddr| self.eni_of(a) == Some(e);
                let rh = &s.header;
                // The record's own direction at its ENI.
                let (e, d) = match (eni, direction) {
                    (Some(e), Some(d)) => (Some(e), Some(d)),
                    (Some(e), None) if owns(e, rh.dst) => (Some(e), Some(Direction::Ingress)),
                    (Some(e), None) if owns(e, rh.src) => (Some(e), Some(Direction::Egress)),
                    (None, Some(d)) => (self.eni_of(rh.local(d)), Some(d)),
                    _ => (None, None),
                };
                match (e, d) {
                    (Some(e), Some(d)) => {
                        // The record's source side is the opener's source side unless
                        // reversed.
                        let src_side = (d == Direction::Egress) != reversed;
                        if src_side {
                            [Some(e), None]
                        } else {
                            [None, Some(e)]
                        }
                    }
                    _ => [self.eni_of(h.src), self.eni_of(h.dst)],
                }
            }
        }
    }
}

/// A service that changes, while it is being counted.
#[derive(Clone, Debug, Default)]
struct Service {
    broken: u64,
    surviving: u64,
    restored: u64,
    unknown: u64,
    packets: u64,
    bytes: u64,
    first_ns: Option<u64>,
    last_ns: Option<u64>,
    clients: BTreeSet<IpAddr>,
    clients_capped: bool,
    /// The opener's verdicts of its first connection, before and after.
    example: Option<(Step, Step, Header)>,
}

/// (ENI, direction, protocol, port, IPv6).
type ServiceKey = (u32, Direction, u8, u16, bool);

/// A changed connection in the top-N.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Top {
    packets: u64,
    bytes: u64,
    first_ns: u64,
    last_ns: u64,
    header: Header,
    at: (u32, Direction),
    before: Step,
    after: Step,
    outcome: Effect,
}

impl Ord for Top {
    /// Broken first, then unknown, restored, surviving; most packets first, then earliest,
    /// then by header: a total order, so the top-N does not depend on the partitions.
    fn cmp(&self, o: &Self) -> Ordering {
        let rank = |e: Effect| match e {
            Effect::Broken => 0,
            Effect::Unknown => 1,
            Effect::Restored => 2,
            Effect::Surviving => 3,
        };
        rank(self.outcome)
            .cmp(&rank(o.outcome))
            .then(o.packets.cmp(&self.packets))
            .then(self.first_ns.cmp(&o.first_ns))
            .then(self.header.cmp(&o.header))
            .then(self.at.cmp(&o.at))
            .then(o.bytes.cmp(&self.bytes))
            .then(self.last_ns.cmp(&o.last_ns))
    }
}

impl PartialOrd for Top {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Totals of one partition (or of the whole run once merged).
#[derive(Default)]
struct Agg {
    totals: Totals,
    changed: Changed,
    connections: Connections,
    /// Packets per rule: decided before (table before's numbering), after (table after's),
    /// and after by a verdict kept from before (table before's).
    hits: [Vec<u64>; 3],
    services: FxHashMap<ServiceKey, Service>,
    /// The best `top` changed connections (a max-heap by [`Top`]'s order: worst on top).
    top: BinaryHeap<Top>,
    agreement: Agreement,
    unmatched: u64,
    /// ENIs (by index) that judged some connection.
    enis: Vec<bool>,
    /// Per second: (total, accepted before, accepted after), and the second being filled.
    seconds: BTreeMap<u64, (u64, u64, u64)>,
    current: Option<(u64, (u64, u64, u64))>,
}

impl Agg {
    fn second(&mut self, ts_ns: u64, n: u64, before: bool, after: bool) {
        if ts_ns == 0 {
            return;
        }
        let s = ts_ns / SECOND;
        let add = |c: &mut (u64, u64, u64)| {
            c.0 += n;
            c.1 += if before { n } else { 0 };
            c.2 += if after { n } else { 0 };
        };
        match &mut self.current {
            Some((cs, c)) if *cs == s => add(c),
            slot => {
                if let Some((cs, c)) = slot.take() {
                    let e = self.seconds.entry(cs).or_default();
                    e.0 += c.0;
                    e.1 += c.1;
                    e.2 += c.2;
                }
                let mut c = (0, 0, 0);
                add(&mut c);
                *slot = Some((s, c));
            }
        }
    }

    fn flush_second(&mut self) {
        if let Some((cs, c)) = self.current.take() {
            let e = self.seconds.entry(cs).or_default();
            e.0 += c.0;
            e.1 += c.1;
            e.2 += c.2;
        }
    }

    fn merge(&mut self, mut o: Agg, top: usize) {
        o.flush_second();
        self.flush_second();
        let t = &mut self.totals;
        t.judged += o.totals.judged;
        t.accepted_before += o.totals.accepted_before;
        t.accepted_after += o.totals.accepted_after;
        t.dropped_before += o.totals.dropped_before;
        t.dropped_after += o.totals.dropped_after;
        t.unknown_before += o.totals.unknown_before;
        t.unknown_after += o.totals.unknown_after;
        self.changed.accept_to_drop += o.changed.accept_to_drop;
        self.changed.drop_to_accept += o.changed.drop_to_accept;
        self.changed.to_unknown += o.changed.to_unknown;
        self.changed.from_unknown += o.changed.from_unknown;
        let c = &mut self.connections;
        c.total += o.connections.total;
        c.broken += o.connections.broken;
        c.surviving += o.connections.surviving;
        c.restored += o.connections.restored;
        c.unknown += o.connections.unknown;
        c.packets_broken += o.connections.packets_broken;
        c.bytes_broken += o.connections.bytes_broken;
        for (mine, theirs) in self.hits.iter_mut().zip(&o.hits) {
            add_into(mine, theirs);
        }
        for (k, s) in o.services {
            let mine = self.services.entry(k).or_default();
            mine.broken += s.broken;
            mine.surviving += s.surviving;
            mine.restored += s.restored;
            mine.unknown += s.unknown;
            mine.packets += s.packets;
            mine.bytes += s.bytes;
            mine.first_ns = min_opt(mine.first_ns, s.first_ns);
            mine.last_ns = mine.last_ns.max(s.last_ns);
            mine.clients_capped |= s.clients_capped;
            for c in s.clients {
                if mine.clients.len() >= MAX_CLIENTS {
                    mine.clients_capped = true;
                    break;
                }
                mine.clients.insert(c);
            }
            if mine.example.is_none() {
                mine.example = s.example;
            }
        }
        for t in o.top {
            push_top(&mut self.top, t, top);
        }
        let a = &mut self.agreement;
        a.records += o.agreement.records;
        a.agree += o.agreement.agree;
        a.logged_accept_model_drop += o.agreement.logged_accept_model_drop;
        a.logged_reject_model_accept += o.agreement.logged_reject_model_accept;
        for (why, n) in o.agreement.logged_reject_reasons {
            *a.logged_reject_reasons.entry(why).or_default() += n;
        }
        a.model_unknown += o.agreement.model_unknown;
        self.unmatched += o.unmatched;
        if self.enis.len() < o.enis.len() {
            self.enis.resize(o.enis.len(), false);
        }
        for (m, t) in self.enis.iter_mut().zip(&o.enis) {
            *m |= t;
        }
        for (s, (n, b, a)) in o.seconds {
            let e = self.seconds.entry(s).or_default();
            e.0 += n;
            e.1 += b;
            e.2 += a;
        }
    }
}

fn add_into(a: &mut Vec<u64>, b: &[u64]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

fn push_top(heap: &mut BinaryHeap<Top>, t: Top, n: usize) {
    if n == 0 {
        return;
    }
    if heap.len() < n {
        heap.push(t);
    } else if heap.peek().is_some_and(|worst| t < *worst) {
        heap.pop();
        heap.push(t);
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A partition: its live connections, and its books (the fates they share, its totals).
#[derive(Default)]
struct Part {
    conns4: HashTable<Conn<u32>>,
    conns6: HashTable<Conn<u128>>,
    books: Books,
    /// The chunk time of the last sweep and how many connections it left; items since.
    swept: (u64, usize),
    since: usize,
}

#[derive(Default)]
struct Books {
    fates: Vec<Fate>,
    /// Fates by their packed form ([`Fate::pack`]): hashing eight words is much cheaper
    /// than hashing the enums field by field.
    fate_ids: FxHashMap<[u64; 8], u32>,
    agg: Agg,
}

fn timeout(c_flags: u8, flips: u8, provider: Provider, protocol: u8) -> u64 {
    let t = track::timeout(provider, protocol, flips);
    if c_flags & RESET != 0 || c_flags & (FIN_O | FIN_R) == FIN_O | FIN_R {
        t.min(CLOSED_TIMEOUT)
    } else {
        t
    }
}

impl Books {
    fn fate_id(&mut self, f: Fate) -> u32 {
        let key = f.pack();
        if let Some(&i) = self.fate_ids.get(&key) {
            return i;
        }
        let i = self.fates.len() as u32;
        self.fates.push(f);
        self.fate_ids.insert(key, i);
        i
    }

    /// Counts one item of connection `c` (direction `d`: 0 opener, 1 reply).
    fn count<A>(&mut self, c: &mut Conn<A>, d: usize, s: &Seen, at: u64) {
        let post = usize::from(s.ts_ns >= at);
        c.packets[d][post] += s.packets;
        c.bytes[d][post] += s.bytes;
        c.last_ns = c.last_ns.max(s.until_ns);
        if (d == 1) != (c.flags & LAST_R != 0)
            && c.packets.iter().flatten().sum::<u64>() > s.packets
        {
            c.flips = c.flips.saturating_add(1);
        }
        if d == 1 {
            c.flags |= LAST_R;
        } else {
            c.flags &= !LAST_R;
        }
        if s.record.is_none() && c.key.protocol == 6 {
            if s.flags & RST != 0 {
                c.flags |= RESET;
            }
            if s.flags & FIN != 0 {
                c.flags |= if d == 0 { FIN_O } else { FIN_R };
            }
        }
        let f = &self.fates[c.fate as usize];
        c.idle_s = u32::try_from(timeout(c.flags, c.flips, f.provider, c.key.protocol) / SECOND)
            .unwrap_or(u32::MAX);
        if f.unmatched {
            self.agg.unmatched += 1;
            return;
        }
        let b = f.before[d].act;
        let a = if post == 1 { f.post[d].act } else { b };
        self.agg
            .second(s.ts_ns, s.packets, b == Act::Accept, a == Act::Accept);
        if let Some(logged) = s.logged {
            let ag = &mut self.agg.agreement;
            ag.records += 1;
            let model = match b {
                Act::Accept => Action::Accept,
                Act::Drop => Action::Drop,
                Act::Unknown => {
                    ag.model_unknown += 1;
                    return;
                }
            };
            if logged == model {
                ag.agree += 1;
            } else if logged == Action::Accept {
                ag.logged_accept_model_drop += 1;
            } else {
                ag.logged_reject_model_accept += 1;
                if let Some(why) = s.reject {
                    *ag.logged_reject_reasons
                        .entry(why.as_str().to_string())
                        .or_default() += 1;
                }
            }
        }
    }

    /// Folds a finished connection into the totals.
    fn finish<A: Word>(&mut self, c: &Conn<A>, top: usize) {
        let f = self.fates[c.fate as usize];
        if f.unmatched {
            return;
        }
        let agg = &mut self.agg;
        agg.connections.total += 1;
        for e in f.ends.iter().flatten() {
            bump_flag(&mut agg.enis, *e);
        }
        let (mut lost_p, mut lost_b, mut gained_p, mut gained_b, mut unknown) = (0, 0, 0, 0, false);
        for d in 0..2 {
            for post in 0..2 {
                let n = c.packets[d][post];
                if n == 0 {
                    continue;
                }
                let b = f.before[d];
                let a = if post == 1 { f.post[d] } else { b };
                let t = &mut agg.totals;
                t.judged += n;
                match b.act {
                    Act::Accept => t.accepted_before += n,
                    Act::Drop => t.dropped_before += n,
                    Act::Unknown => t.unknown_before += n,
                }
                match a.act {
                    Act::Accept => t.accepted_after += n,
                    Act::Drop => t.dropped_after += n,
                    Act::Unknown => t.unknown_after += n,
                }
                if let Why::Rule(r) = b.why {
                    bump(&mut agg.hits[0], r, n);
                }
                if let Why::Rule(r) = a.why {
                    // A verdict kept from before (a surviving connection) names its rule in
                    // the table before's numbering.
                    let i = if a.side == Side::After { 1 } else { 2 };
                    bump(&mut agg.hits[i], r, n);
                }
                // Unknown in both worlds: the revoke does not change what is known of it.
                unknown |= (b.act == Act::Unknown || a.act == Act::Unknown) && b.act != a.act;
                match (b.act, a.act) {
                    (Act::Accept, Act::Drop) => {
                        agg.changed.accept_to_drop += n;
                        lost_p += n;
                        lost_b += c.bytes[d][post];
                    }
                    (Act::Drop, Act::Accept) => {
                        agg.changed.drop_to_accept += n;
                        gained_p += n;
                        gained_b += c.bytes[d][post];
                    }
                    (x, Act::Unknown) if x != Act::Unknown => agg.changed.to_unknown += n,
                    (Act::Unknown, y) if y != Act::Unknown => agg.changed.from_unknown += n,
                    _ => {}
                }
            }
        }
        let post_packets = c.packets[0][1] + c.packets[1][1];
        let outcome = if unknown {
            Effect::Unknown
        } else if lost_p > 0 {
            Effect::Broken
        } else if gained_p > 0 {
            Effect::Restored
        } else if f.survive && post_packets > 0 {
            Effect::Surviving
        } else {
            return;
        };
        let (packets, bytes) = match outcome {
            Effect::Restored => (gained_p, gained_b),
            Effect::Broken => (lost_p, lost_b),
            _ => (
                c.packets.iter().flatten().sum(),
                c.bytes.iter().flatten().sum(),
            ),
        };
        let cn = &mut agg.connections;
        match outcome {
            Effect::Broken => {
                cn.broken += 1;
                cn.packets_broken += lost_p;
                cn.bytes_broken += lost_b;
            }
            Effect::Restored => cn.restored += 1,
            Effect::Surviving => cn.surviving += 1,
            Effect::Unknown => cn.unknown += 1,
        }
        let (src, dst) = if c.o_is_a {
            (c.key.a, c.key.b)
        } else {
            (c.key.b, c.key.a)
        };
        let (sp, dp) = if c.o_is_a {
            (c.key.a_port, c.key.b_port)
        } else {
            (c.key.b_port, c.key.a_port)
        };
        let dp = if IpProtocol(c.key.protocol).is_icmp() {
            dp & 0x7fff
        } else {
            dp
        };
        let echo = IpProtocol(c.key.protocol).is_icmp() && c.key.b_port & 0x8000 == 0;
        let header = Header {
            src: src.addr(),
            dst: dst.addr(),
            protocol: c.key.protocol,
            src_port: match (echo, c.key.protocol) {
                (true, 1) => 8,
                (true, _) => 128,
                (false, _) => sp,
            },
            dst_port: dp,
        };
        let header = normalize(header);
        let Some(at) = f.change else {
            return;
        };
        let port = match header.protocol {
            6 | 17 => header.dst_port,
            1 | 58 => header.src_port,
            _ => 0,
        };
        let v6 = header.src.is_ipv6();
        let svc = agg
            .services
            .entry((at.0, at.1, header.protocol, port, v6))
            .or_default();
        match outcome {
            Effect::Broken => svc.broken += 1,
            Effect::Restored => svc.restored += 1,
            Effect::Surviving => svc.surviving += 1,
            Effect::Unknown => svc.unknown += 1,
        }
        svc.packets += packets;
        svc.bytes += bytes;
        svc.first_ns = min_opt(svc.first_ns, Some(c.first_ns));
        svc.last_ns = svc.last_ns.max(Some(c.last_ns));
        let client = match at.1 {
            Direction::Ingress => header.src,
            Direction::Egress => header.dst,
        };
        // Clients of the connections that change now (a surviving one keeps its client).
        if outcome != Effect::Surviving {
            if svc.clients.len() < MAX_CLIENTS {
                svc.clients.insert(client);
            } else if !svc.clients.contains(&client) {
                svc.clients_capped = true;
            }
        }
        if svc.example.is_none() {
            svc.example = Some((f.before[0], f.fresh, header));
        }
        push_top(
            &mut agg.top,
            Top {
                packets,
                bytes,
                first_ns: c.first_ns,
                last_ns: c.last_ns,
                header,
                at,
                before: f.before[0],
                after: f.post[0],
                outcome,
            },
            top,
        );
    }
}

fn bump(v: &mut Vec<u64>, r: u32, n: u64) {
    let r = r as usize;
    if v.len() <= r {
        v.resize(r + 1, 0);
    }
    v[r] += n;
}

fn bump_flag(v: &mut Vec<bool>, i: u32) {
    let i = i as usize;
    if v.len() <= i {
        v.resize(i + 1, false);
    }
    v[i] = true;
}

fn normalize(h: Header) -> Header {
    Header::new(h.src, h.dst, h.protocol, h.src_port, h.dst_port).unwrap_or(h)
}

/// The partition of a key hash, from its upper half (the tables index buckets by the low
/// bits, which must stay spread within a partition).
fn partition(hash: u64, n: usize) -> usize {
    (((hash >> 32) * n as u64) >> 32) as usize
}

fn closed(flags: u8) -> bool {
    flags & RESET != 0 || flags & (FIN_O | FIN_R) == FIN_O | FIN_R
}

impl Books {
    /// Starts a connection with `s`, its first item.
    fn open<A: Word>(
        &mut self,
        judge: &Judge,
        s: &Seen,
        k: Key<A>,
        src_is_a: bool,
        at: u64,
    ) -> Conn<A> {
        let mut h = s.header;
        // An ICMP flow-log record carries no type (AWS logs ports 0 0): the first record of
        // an exchange is taken for its echo request, the other way for its replies.
        let unlogged_icmp =
            s.record.is_some() && h.ip_protocol().is_icmp() && (h.src_port, h.dst_port) == (0, 0);
        if unlogged_icmp {
            h.src_port = if h.protocol == 1 { 8 } else { 128 };
        }
        let flags = if s.record.is_none() { s.flags } else { 0 };
        let tcp = h.protocol == 6;
        let icmp = h.ip_protocol().is_icmp();
        let ahead = s.ts_ns >= at;
        // (opener is the source, opener captured)
        let known = if tcp && flags & (SYN | ACK) == SYN {
            Some((true, true))
        } else if tcp && flags & (SYN | ACK) == SYN | ACK {
            Some((false, false))
        } else if icmp && is_echo_request(&h) {
            Some((true, true))
        } else if icmp && is_echo_reply(&h) {
            Some((false, false))
        } else if icmp {
            Some((true, true))
        } else {
            None
        };
        let (fate, opener_is_src) = match known {
            Some((true, captured)) => (
                judge.fate(judge.ends(s, &h, false), &h, captured && ahead),
                true,
            ),
            Some((false, _)) => {
                let r = reverse(&h);
                (judge.fate(judge.ends(s, &r, true), &r, false), false)
            }
            None => {
                // The higher port opens (the lower is the service); with equal ports, the
                // first item's direction, unless the rules before refuse it and accept the
                // other way.
                let captured = !tcp || (s.record.is_some() && s.flags & SYN != 0);
                let forward = || judge.fate(judge.ends(s, &h, false), &h, captured && ahead);
                let back = || {
                    let r = reverse(&h);
                    judge.fate(judge.ends(s, &r, true), &r, false)
                };
                match h.src_port.cmp(&h.dst_port) {
                    Ordering::Greater => (forward(), true),
                    Ordering::Less => (back(), false),
                    Ordering::Equal => {
                        let f = forward();
                        if f.before[0].act == Act::Accept || f.unmatched {
                            (f, true)
                        } else {
                            let b = back();
                            if b.before[0].act == Act::Accept {
                                (b, false)
                            } else {
                                (f, true)
                            }
                        }
                    }
                }
            }
        };
        let id = self.fate_id(fate);
        Conn {
            key: k,
            first_ns: s.ts_ns,
            last_ns: s.until_ns,
            o_is_a: opener_is_src == src_is_a,
            flags: 0,
            flips: 0,
            idle_s: u32::MAX,
            fate: id,
            packets: [[0; 2]; 2],
            bytes: [[0; 2]; 2],
        }
    }
}

/// The header of the other direction: addresses and ports swapped, an echo request
/// answered by an echo reply and the other way round.
fn reverse(h: &Header) -> Header {
    let mut r = h.reversed();
    r.src_port = match (h.protocol, h.src_port) {
        (1, 8) => 0,
        (1, 0) => 8,
        (58, 128) => 129,
        (58, 129) => 128,
        _ => r.src_port,
    };
    r
}

/// The tasks of one sub-chunk per partition: each item as the loop sees it, with its key
/// hash. Partitions read their tasks in order, not the chunk's items scattered over it
/// (which made every item a cache miss).
#[derive(Default)]
struct Routed {
    tasks: Vec<Vec<(Seen, u64)>>,
    latest: u64,
    /// The sub-chunk holds a fragment.
    fragments: bool,
}

/// The traffic what-if of one or more inputs: feed it items (or whole sources), then
/// write its sections into a report.
pub struct Run<'j> {
    judge: &'j Judge,
    parts: Vec<Part>,
    /// The revoke instant of the current input.
    at: Option<u64>,
    fragments: FxHashMap<(IpAddr, IpAddr, u8, u32), (u16, u16)>,
    orphan_fragments: u64,
    routed: Vec<Routed>,
    /// Totals of finished inputs.
    done: Agg,
    items: u64,
    warnings: Vec<String>,
    /// The revoke instants used, per input.
    instants: Vec<u64>,
    /// Items were fed since the last end of input.
    pending: bool,
    inputs: Vec<report::Input>,
}

/// Progress of a run over one source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes read (and decoded).
    pub bytes: u64,
    /// Items judged.
    pub items: u64,
}

impl<'j> Run<'j> {
    /// A run with no traffic yet.
    pub fn new(judge: &'j Judge) -> Run<'j> {
        let n = judge.config.partitions.max(1);
        Run {
            judge,
            parts: (0..n).map(|_| Part::default()).collect(),
            at: judge.config.at_ns,
            fragments: FxHashMap::default(),
            orphan_fragments: 0,
            routed: Vec::new(),
            done: Agg::default(),
            items: 0,
            warnings: Vec::new(),
            instants: Vec::new(),
            pending: false,
            inputs: Vec::new(),
        }
    }

    /// Items judged so far.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Live connections held.
    pub fn connections(&self) -> usize {
        self.parts
            .iter()
            .map(|p| p.conns4.len() + p.conns6.len())
            .sum()
    }

    /// Judges every item of `source` (read ahead and decoded on the rayon pool, in chunks of
    /// `chunk` items), then ends the input. `progress` is called after each chunk.
    pub fn source(
        &mut self,
        source: &mut Source<'_>,
        name: &str,
        chunk: usize,
        mut progress: impl FnMut(Progress),
    ) -> Result<(), Error> {
        let read = crate::packet::read_ahead(source, chunk, |items, bytes| {
            self.feed(items);
            progress(Progress {
                bytes,
                items: self.items,
            });
            Ok::<(), std::convert::Infallible>(())
        });
        let read = match read {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let unmatched = self.end_input();
        if unmatched > 0 {
            self.warnings.push(format!(
                "{name}: {unmatched} packets or records touched no ENI of the state and were not judged"
            ));
        }
        read.map_err(|source| Error::Traffic {
            input: name.to_string(),
            source,
        })
    }

    /// Judges a chunk of items of the current input, in input order.
    pub fn feed(&mut self, items: &[Item]) {
        if items.is_empty() {
            return;
        }
        let judge = self.judge;
        let at = *self.at.get_or_insert_with(|| {
            let s = judge.seen(&items[0], None);
            s.ts_ns
        });
        self.items += items.len() as u64;
        self.pending = true;
        let n = self.parts.len();
        let size = if n == 1 {
            items.len()
        } else {
            items
                .len()
                .div_ceil(rayon::current_num_threads() * 2)
                .max(MIN_SUB_CHUNK)
        };
        let subs = items.len().div_ceil(size);
        let mut routed = std::mem::take(&mut self.routed);
        routed.resize_with(subs.max(routed.len()), Routed::default);
        // Routed in parallel as if no item were a fragment; the sub-chunks that hold one
        // are routed again once non-first fragments have their first fragment's ports
        // (rare: it takes a pass in input order over the chunk).
        let route = |s: usize, r: &mut Routed, chunk: &[Item], fixed: &[(usize, Header)]| {
            r.tasks.resize_with(n, Vec::new);
            r.tasks.iter_mut().for_each(Vec::clear);
            r.latest = 0;
            r.fragments = false;
            for (j, item) in chunk.iter().enumerate() {
                let fix = match item {
                    Item::Packet(p) if p.fragment.is_some() => {
                        r.fragments = true;
                        fixed
                            .binary_search_by_key(&(s * size + j), |x| x.0)
                            .ok()
                            .map(|at| fixed[at].1)
                    }
                    _ => None,
                };
                let seen = judge.seen(item, fix);
                r.latest = r.latest.max(seen.ts_ns);
                let hash = judge.hash(&seen);
                r.tasks[partition(hash, n)].push((seen, hash));
            }
        };
        let route_all = |routed: &mut [Routed], fixed: &[(usize, Header)], again: bool| {
            if n == 1 {
                route(0, &mut routed[0], items, fixed);
            } else {
                routed[..subs]
                    .par_iter_mut()
                    .zip(items.par_chunks(size))
                    .enumerate()
                    .filter(|(_, (r, _))| !again || r.fragments)
                    .for_each(|(s, (r, chunk))| route(s, r, chunk, fixed));
            }
        };
        route_all(&mut routed, &[], false);
        if routed[..subs].iter().any(|r| r.fragments) {
            let mut fixed: Vec<(usize, Header)> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Item::Packet(p) = item else { continue };
                let Some(f) = p.fragment else { continue };
                let h = p.header;
                let fk = (h.src, h.dst, h.protocol, f.id);
                if f.is_first() {
                    if self.fragments.len() >= MAX_FRAGMENTS {
                        self.fragments.clear();
                    }
                    self.fragments.insert(fk, (h.src_port, h.dst_port));
                } else if let Some(&(sp, dp)) = self.fragments.get(&fk) {
                    let mut h = h;
                    h.src_port = sp;
                    h.dst_port = dp;
                    fixed.push((i, h));
                } else {
                    self.orphan_fragments += 1;
                }
            }
            route_all(&mut routed, &fixed, true);
        }
        let routed_now = &routed[..subs];
        let latest = routed_now.iter().map(|r| r.latest).max().unwrap_or(0);
        let top = judge.config.top;
        let run = |(p, part): (usize, &mut Part)| {
            for r in routed_now {
                for (seen, hash) in &r.tasks[p] {
                    part.judge(judge, seen, *hash, at, top);
                }
            }
            part.since += routed_now.iter().map(|r| r.tasks[p].len()).sum::<usize>();
            part.sweep(latest, top);
        };
        if n == 1 {
            self.parts.iter_mut().enumerate().for_each(run);
        } else {
            self.parts.par_iter_mut().enumerate().for_each(run);
        }
        self.routed = routed;
    }

    /// Ends the current input: every live connection is finished and counted, and the next
    /// input starts with no connections (and its own revoke instant unless one was given).
    /// Returns the items of the input that touched no ENI.
    pub fn end_input(&mut self) -> u64 {
        let top = self.judge.config.top;
        let before = self.done.unmatched;
        let parts = std::mem::take(&mut self.parts);
        let n = parts.len();
        let finished: Vec<Agg> = parts
            .into_par_iter()
            .map(|mut part| {
                let Part {
                    conns4,
                    conns6,
                    books,
                    ..
                } = &mut part;
                for c in conns4.drain() {
                    books.finish(&c, top);
                }
                for c in conns6.drain() {
                    books.finish(&c, top);
                }
                std::mem::take(&mut books.agg)
            })
            .collect();
        for agg in finished {
            self.done.merge(agg, top);
        }
        self.parts = (0..n).map(|_| Part::default()).collect();
        if let Some(at) = self.at {
            self.instants.push(at);
        }
        self.at = self.judge.config.at_ns;
        self.pending = false;
        self.fragments.clear();
        self.done.unmatched - before
    }
}

impl Part {
    fn judge(&mut self, judge: &Judge, s: &Seen, hash: u64, at: u64, top: usize) {
        let eni = Judge::key_eni(s);
        let h = &s.header;
        match (h.src, h.dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let (k, src_is_a) = key_of(h, u32::from(a), u32::from(b), eni);
                step(
                    &mut self.conns4,
                    &mut self.books,
                    judge,
                    s,
                    k,
                    src_is_a,
                    hash,
                    at,
                    top,
                );
            }
            (a, b) => {
                let (k, src_is_a) = key_of(h, v6_bits(a), v6_bits(b), eni);
                step(
                    &mut self.conns6,
                    &mut self.books,
                    judge,
                    s,
                    k,
                    src_is_a,
                    hash,
                    at,
                    top,
                );
            }
        }
    }

    /// Finishes connections idle past their timeout, so that memory follows the live
    /// connections: once the clock has moved [`SWEEP_EVERY`] and twice as many items as
    /// connections held have been judged (a sweep costs at most half a visit per item), or
    /// once the table has doubled.
    fn sweep(&mut self, latest: u64, top: usize) {
        let (at, left) = self.swept;
        let held = self.conns4.len() + self.conns6.len();
        let due = latest >= at.saturating_add(SWEEP_EVERY) && self.since >= 2 * held;
        if !(due || held > 2 * left + 4096) {
            return;
        }
        let Part {
            conns4,
            conns6,
            books,
            ..
        } = self;
        fn sweep<A: Word>(
            conns: &mut HashTable<Conn<A>>,
            books: &mut Books,
            latest: u64,
            top: usize,
        ) {
            let mut done = Vec::new();
            conns.retain(|c| {
                let idle = latest.saturating_sub(c.last_ns) > u64::from(c.idle_s) * SECOND;
                if idle {
                    done.push(c.clone());
                }
                !idle
            });
            for c in done {
                books.finish(&c, top);
            }
        }
        sweep(conns4, books, latest, top);
        sweep(conns6, books, latest, top);
        self.swept = (latest, self.conns4.len() + self.conns6.len());
        self.since = 0;
    }
}

/// Judges one item against its partition's connections of one address family.
#[allow(clippy::too_many_arguments)]
fn step<A: Word>(
    conns: &mut HashTable<Conn<A>>,
    books: &mut Books,
    judge: &Judge,
    s: &Seen,
    k: Key<A>,
    src_is_a: bool,
    hash: u64,
    at: u64,
    top: usize,
) {
    let rehash = |c: &Conn<A>| FxBuildHasher.hash_one(c.key);
    match conns.entry(hash, |c| c.key == k, rehash) {
        Entry::Occupied(mut o) => {
            let c = o.get();
            let idle = s.ts_ns.saturating_sub(c.last_ns) > u64::from(c.idle_s) * SECOND;
            let syn = s.record.is_none() && s.flags & (SYN | ACK) == SYN;
            if idle || (closed(c.flags) && syn) {
                let (old, vacant) = o.remove();
                books.finish(&old, top);
                let mut c = books.open(judge, s, k, src_is_a, at);
                let d = usize::from(src_is_a != c.o_is_a);
                books.count(&mut c, d, s, at);
                vacant.insert(c);
            } else {
                let c = o.get_mut();
                let d = usize::from(src_is_a != c.o_is_a);
                books.count(c, d, s, at);
            }
        }
        Entry::Vacant(v) => {
            let mut c = books.open(judge, s, k, src_is_a, at);
            let d = usize::from(src_is_a != c.o_is_a);
            books.count(&mut c, d, s, at);
            v.insert(c);
        }
    }
}

fn service_label(protocol: u8, port: u16) -> String {
    let name = crate::model::Protocol::Number(protocol).to_string();
    match protocol {
        6 | 17 => format!("{port}/{name}"),
        1 | 58 => format!("{name} type {port}"),
        _ => name,
    }
}

impl Run<'_> {
    /// Adds an input to the report's list of inputs.
    pub fn input(&mut self, input: report::Input) {
        self.inputs.push(input);
    }

    /// Ends the current input if items were fed since the last end, and writes the traffic
    /// sections into `report`; names come from `before`.
    pub fn finish(mut self, report: &mut Report, before: &State) {
        if self.pending {
            let unmatched = self.end_input();
            if unmatched > 0 {
                self.warnings.push(format!(
                    "{unmatched} packets or records touched no ENI of the state and were not judged"
                ));
            }
        }
        let judge = self.judge;
        let top = judge.config.top;
        let mut agg = self.done;
        agg.flush_second();
        let names = report::Names::new(before);
        let eni_id = |i: u32| before.enis.get(i as usize).map(|e| e.id.clone());
        // Flows: the top-N changed connections.
        let flows: Vec<Flow> = agg
            .top
            .into_sorted_vec()
            .into_iter()
            .filter_map(|t| {
                let eni = eni_id(t.at.0)?;
                Some(Flow {
                    eni_name: names.eni(&eni),
                    eni,
                    direction: t.at.1,
                    src: t.header.src.to_string(),
                    dst: t.header.dst.to_string(),
                    protocol: t.header.protocol,
                    src_port: t.header.src_port,
                    dst_port: t.header.dst_port,
                    packets: t.packets,
                    bytes: t.bytes,
                    first_seen_ns: (t.first_ns > 0).then_some(t.first_ns),
                    last_seen_ns: (t.last_ns > 0).then_some(t.last_ns),
                    before: judge.named(t.before),
                    after: judge.named(t.after),
                    outcome: t.outcome,
                })
            })
            .collect();
        // Services.
        let mut services: Vec<(ServiceKey, Service)> = agg.services.into_iter().collect();
        services.sort_by(|(ka, a), (kb, b)| {
            (b.broken, b.surviving, b.restored, b.unknown, b.packets)
                .cmp(&(a.broken, a.surviving, a.restored, a.unknown, a.packets))
                .then(ka.0.cmp(&kb.0))
                .then(ka.1.cmp(&kb.1))
                .then(ka.2.cmp(&kb.2))
                .then(ka.3.cmp(&kb.3))
                .then(ka.4.cmp(&kb.4))
        });
        let impact: Vec<Impact> = services
            .into_iter()
            .filter_map(|((eni, direction, protocol, port, v6), s)| {
                let id = eni_id(eni)?;
                let (b, a, _) = s.example?;
                Some(Impact {
                    eni_name: names.eni(&id),
                    instance: names.instance(&id),
                    groups: names.groups(&id),
                    eni: id,
                    direction,
                    family: if v6 {
                        crate::model::Family::V6
                    } else {
                        crate::model::Family::V4
                    },
                    protocol,
                    port,
                    service: service_label(protocol, port),
                    clients: s.clients.len() as u64,
                    clients_exact: !s.clients_capped,
                    client_sample: s
                        .clients
                        .iter()
                        .take(top.max(1))
                        .map(|&c| names.client(c))
                        .collect(),
                    connections: s.broken + s.surviving + s.restored + s.unknown,
                    broken: s.broken,
                    surviving: s.surviving,
                    restored: s.restored,
                    unknown: s.unknown,
                    packets: s.packets,
                    bytes: s.bytes,
                    first_seen: s.first_ns.filter(|&t| t > 0).map(report::rfc3339),
                    last_seen: s.last_ns.filter(|&t| t > 0).map(report::rfc3339),
                    before: judge.named(b),
                    after: judge.named(a),
                })
            })
            .collect();
        // Rule hits, for the rules of the groups on ENIs that judged traffic.
        let mut by_rule: HashMap<crate::model::RuleId, (u64, u64)> = HashMap::new();
        for (i, n) in agg.hits[0].iter().enumerate() {
            if let Some(r) = judge.before.rules().get(i) {
                by_rule.entry(r.clone()).or_default().0 += n;
            }
        }
        for (i, n) in agg.hits[1].iter().enumerate() {
            if let Some(r) = judge.after.rules().get(i) {
                by_rule.entry(r.clone()).or_default().1 += n;
            }
        }
        for (i, n) in agg.hits[2].iter().enumerate() {
            if let Some(r) = judge.before.rules().get(i) {
                by_rule.entry(r.clone()).or_default().1 += n;
            }
        }
        let groups: BTreeSet<_> = before
            .enis
            .iter()
            .enumerate()
            .filter(|(i, _)| agg.enis.get(*i).copied().unwrap_or(false))
            .flat_map(|(_, e)| e.groups.iter().cloned())
            .collect();
        let mut rules = Vec::new();
        let mut without = Vec::new();
        for r in before.rules.iter().filter(|r| groups.contains(&r.group)) {
            let (b, a) = by_rule.get(&r.id).copied().unwrap_or((0, 0));
            if b == 0 {
                without.push(r.id.clone());
            }
            rules.push(Hits {
                rule_id: r.id.clone(),
                before: b,
                after: a,
            });
        }
        let mut agreement = agg.agreement;
        if agreement.records > 0 {
            agreement.ratio = agreement.agree as f64 / agreement.records as f64;
            report.flow_log_agreement = Some(agreement);
        }
        let c = &agg.connections;
        report.flows_total = c.broken + c.surviving + c.restored + c.unknown;
        report.timeline = report::timeline(&agg.seconds, 60);
        report.packets = agg.totals;
        report.changed = agg.changed;
        report.connections = agg.connections;
        report.impact = impact;
        report.flows = flows;
        report.rules = rules;
        report.rules_without_hits = without;
        report.top = top;
        report.inputs.extend(self.inputs);
        report.revoke_at = self
            .instants
            .iter()
            .filter(|&&t| t > 0)
            .map(|&t| report::rfc3339(t))
            .collect();
        if self.orphan_fragments > 0 {
            self.warnings.push(format!(
                "{} non-first fragments came without their first fragment and were judged with ports 0",
                self.orphan_fragments
            ));
        }
        report.warnings.extend(self.warnings);
    }
}

/// Synthetic packets as traffic items, one every millisecond from `start_ns`: TCP packets
/// carry a SYN, or an ACK when their source port is below their destination port (a
/// reply), as `sgsim synth` writes them.
pub fn synthetic_items(headers: &[Header], start_ns: u64) -> Vec<Item> {
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let ports = h
                .ip_protocol()
                .carries_ports()
                .then_some((h.src_port, h.dst_port));
            let icmp = h
                .ip_protocol()
                .is_icmp()
                .then_some((h.src_port as u8, h.dst_port as u8));
            let flags = if h.src_port < h.dst_port { ACK } else { SYN };
            Item::Packet(Packet {
                index: i as u64,
                ts_ns: start_ns + i as u64 * 1_000_000,
                header: *h,
                wire_len: 64,
                cap_len: 64,
                tcp_flags: (h.protocol == 6).then_some(flags),
                ports,
                icmp,
                fragment: None,
                interface: 0,
            })
        })
        .collect()
}

/// Synthetic sessions as traffic items, one packet every millisecond from `start_ns`: the
/// conversations [`crate::packet::synth::sessions`] builds from `openers`, `n` packets in
/// all.
pub fn synthetic_sessions(openers: &[Header], n: usize, start_ns: u64, seed: u64) -> Vec<Item> {
    synthetic_items_with_flags(
        &crate::packet::synth::sessions(openers, n, 1000, seed),
        start_ns,
    )
}

/// Packets with their TCP flags as traffic items, one every millisecond from `start_ns`,
/// each as long as the frame `sgsim synth --sessions` writes for it.
pub fn synthetic_items_with_flags(packets: &[(Header, u8)], start_ns: u64) -> Vec<Item> {
    packets
        .iter()
        .enumerate()
        .map(|(i, &(h, flags))| {
            let ip = if h.src.is_ipv6() { 40 } else { 20 };
            let l4 = match h.protocol {
                6 => 20,
                17 => 12,
                _ => 8,
            };
            let len = 14 + ip + l4;
            Item::Packet(Packet {
                index: i as u64,
                ts_ns: start_ns + i as u64 * 1_000_000,
                header: h,
                wire_len: len,
                cap_len: len,
                tcp_flags: (h.protocol == 6).then_some(flags),
                ports: h
                    .ip_protocol()
                    .is_tcp_or_udp()
                    .then_some((h.src_port, h.dst_port)),
                icmp: h
                    .ip_protocol()
                    .is_icmp()
                    .then_some((h.src_port as u8, h.dst_port as u8)),
                fragment: None,
                interface: 0,
            })
        })
        .collect()
}
