//! The books of a partition: live connections, the fates they share, and how each item and
//! each finished connection is counted.

use std::cmp::Ordering;

use rustc_hash::FxHashMap;

use super::classes::FateKey;
use super::judge::{Act, Ends, Fate, Judge, Side, Why};
use super::keys::{reverse, Key, Seen, Word};
use super::tally::{min_opt, push_top, Agg, Top};
use super::{ACK, FIN, RST, SECOND, SYN};
use crate::model::{Action, Direction, Header, IpProtocol, Provider};
use crate::track::{self, is_echo_reply, is_echo_request};
use crate::whatif::report::Effect;

/// At most this many kinds of connection have their fate remembered per partition
/// ([`super::classes`]); past it, the memory starts again. A fleet's day of flow logs has
/// some 800 kinds per partition; on the capture of `sgsim bench --whatif` (500 ENIs, packets
/// aimed at every rule edge) a quarter of new connections find their kind (the bound keeps
/// the memory under a megabyte a partition).
const MAX_KINDS: usize = 1 << 14;

/// A closed TCP connection is forgotten this long after its last packet (its last ACKs
/// still belong to it).
const CLOSED_TIMEOUT: u64 = 120 * SECOND;

const FIN_O: u8 = 1;
const FIN_R: u8 = 2;
const RESET: u8 = 4;
/// The last packet went the reply's way.
const LAST_R: u8 = 8;

/// No ENI at this end of a connection.
const NO_ENI: u32 = u32::MAX;

/// A live connection.
#[derive(Clone, Debug)]
pub(super) struct Conn<A> {
    pub(super) key: Key<A>,
    pub(super) first_ns: u64,
    pub(super) last_ns: u64,
    /// Whether side `a` of the key is the opener.
    pub(super) o_is_a: bool,
    pub(super) flags: u8,
    /// Direction changes, saturating (UDP becomes a stream at 3).
    flips: u8,
    /// Finished: its place in the table waits for the next connection
    /// ([`super::conns::Conns`]).
    pub(super) gone: bool,
    /// Its idle timeout in seconds as of its last packet (provider, protocol, stream,
    /// closed): sweeps read it without looking up the fate.
    pub(super) idle_s: u32,
    fate: u32,
    /// The ENIs the opener leaves and reaches ([`NO_ENI`]: none). Kept here, not in the
    /// fate: with them, nearly every connection of a fleet had a fate of its own.
    ends: [u32; 2],
    /// Packets and bytes by direction (opener, reply) and by time (before, from the revoke
    /// instant).
    packets: [[u64; 2]; 2],
    bytes: [[u64; 2]; 2],
}

#[derive(Default)]
pub(super) struct Books {
    fates: Vec<Fate>,
    /// Fates by their packed form ([`Fate::pack`]): hashing seven words is much cheaper
    /// than hashing the enums field by field.
    fate_ids: FxHashMap<[u64; 11], u32>,
    /// The fate of each kind of connection judged ([`super::classes`]).
    kinds: FxHashMap<FateKey, u32>,
    pub(super) agg: Agg,
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
    /// The fate (interned) of a connection crossing `ends` whose opener is `h`: that of
    /// the connections of its kind when one was judged ([`super::classes`]).
    fn fate_of(&mut self, judge: &Judge, ends: Ends, h: &Header, new: bool) -> u32 {
        let kind = judge.kind(ends, h, new);
        if let Some(&id) = kind.as_ref().and_then(|k| self.kinds.get(k)) {
            debug_assert_eq!(
                self.fates[id as usize],
                judge.fate(ends, h, new),
                "{h:?} at {ends:?}, new {new}: its kind's fate is not its own"
            );
            return id;
        }
        let id = self.fate_id(judge.fate(ends, h, new));
        if let Some(k) = kind {
            if self.kinds.len() >= MAX_KINDS {
                self.kinds.clear();
            }
            self.kinds.insert(k, id);
        }
        id
    }

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
    pub(super) fn count<A>(&mut self, c: &mut Conn<A>, d: usize, s: &Seen, at: u64) {
        let post = usize::from(s.ts_ns >= at);
        // Whether an earlier item was counted (every item counts at least one packet),
        // read before the counters are written: summing them just after the write made
        // each item wait for the store (a wide load is not forwarded from a narrow store).
        let earlier = c.packets != [[0; 2]; 2];
        // What the idle timeout depends on (besides the fate and the protocol, fixed).
        let was = (c.flags & (RESET | FIN_O | FIN_R), c.flips);
        c.packets[d][post] += s.packets;
        c.bytes[d][post] += s.bytes;
        c.last_ns = c.last_ns.max(s.until_ns);
        if (d == 1) != (c.flags & LAST_R != 0) && earlier {
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
        // Recomputed at the first item and when a FIN, an RST or a direction change may
        // have changed it ([`Books::open`] leaves `u32::MAX`).
        if c.idle_s == u32::MAX || was != (c.flags & (RESET | FIN_O | FIN_R), c.flips) {
            c.idle_s =
                u32::try_from(timeout(c.flags, c.flips, f.provider, c.key.protocol) / SECOND)
                    .unwrap_or(u32::MAX);
        }
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
    pub(super) fn finish<A: Word>(&mut self, c: &Conn<A>, top: usize) {
        let f = self.fates[c.fate as usize];
        if f.unmatched {
            return;
        }
        let agg = &mut self.agg;
        agg.connections.total += 1;
        for &e in c.ends.iter().filter(|&&e| e != NO_ENI) {
            bump_flag(&mut agg.enis, e);
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
                let other_b = f.others[0][d];
                let other_a = if post == 1 { f.others[1][d] } else { other_b };
                for s in [Some(b), other_b].into_iter().flatten() {
                    if let Why::Rule(r) = s.why {
                        bump(&mut agg.hits[0], r, n);
                    }
                }
                for s in [Some(a), other_a].into_iter().flatten() {
                    if let Why::Rule(r) = s.why {
                        // A verdict kept from before (a surviving connection) names its
                        // rule in the table before's numbering.
                        let i = if s.side == Side::After { 1 } else { 2 };
                        bump(&mut agg.hits[i], r, n);
                    }
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
        let (src, dst, protocol) = (src.addr(), dst.addr(), c.key.protocol);
        let sp = match (echo, protocol) {
            (true, 1) => 8,
            (true, _) => 128,
            (false, _) => sp,
        };
        // Normalized where it can be; as the key holds it otherwise.
        let header = Header::new(src, dst, protocol, sp, dp)
            .unwrap_or_else(|_| Header::new_unchecked(src, dst, protocol, sp, dp));
        let Some((end, _)) = f.change else {
            return;
        };
        // The service: the ENI where the verdict changes, and the opener's direction there
        // (a reply refused at egress breaks a connection that came in).
        let opened = if end == 0 {
            Direction::Egress
        } else {
            Direction::Ingress
        };
        let at = (c.ends[usize::from(end)], opened);
        let port = match header.protocol() {
            6 | 17 => header.dst_port(),
            1 | 58 => header.src_port(),
            _ => 0,
        };
        let v6 = header.src().is_ipv6();
        let svc = agg
            .services
            .entry((at.0, at.1, header.protocol(), port, v6))
            .or_default();
        match outcome {
            Effect::Broken => svc.broken += 1,
            Effect::Restored => svc.restored += 1,
            Effect::Surviving => svc.surviving += 1,
            Effect::Unknown => svc.unknown += 1,
        }
        svc.packets += packets;
        svc.bytes += bytes;
        if outcome == Effect::Broken {
            svc.packets_broken += lost_p;
            svc.bytes_broken += lost_b;
        }
        svc.first_ns = min_opt(svc.first_ns, Some(c.first_ns));
        svc.last_ns = svc.last_ns.max(Some(c.last_ns));
        // The ENI's peer: the opener's destination where the ENI opened the connection,
        // its source where the connection came to the ENI (whichever way the verdict
        // changed: a reply refused at egress is a client's connection too).
        let client = if end == 0 { header.dst() } else { header.src() };
        // Clients of the connections that change now (a surviving one keeps its client).
        if outcome != Effect::Surviving {
            svc.add_client(client);
        }
        svc.offer_example(c.first_ns, header, f.before[0], f.fresh);
        // The connection's verdicts where they change: the opener's, else the reply's (an
        // untracked connection whose replies are refused after the revoke).
        let d = usize::from(f.before[0].act == f.post[0].act && f.before[1].act != f.post[1].act);
        push_top(
            &mut agg.top,
            Top {
                packets,
                bytes,
                first_ns: c.first_ns,
                last_ns: c.last_ns,
                header,
                at,
                before: f.before[d],
                after: f.post[d],
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

pub(super) fn closed(flags: u8) -> bool {
    flags & RESET != 0 || flags & (FIN_O | FIN_R) == FIN_O | FIN_R
}

impl Books {
    /// Starts a connection with `s`, its first item.
    pub(super) fn open<A: Word>(
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
        let unlogged_icmp = s.record.is_some()
            && h.ip_protocol().is_icmp()
            && (h.src_port(), h.dst_port()) == (0, 0);
        if unlogged_icmp {
            h = h.with_ports(if h.protocol() == 1 { 8 } else { 128 }, h.dst_port());
        }
        let flags = if s.record.is_none() { s.flags } else { 0 };
        let tcp = h.protocol() == 6;
        let icmp = h.ip_protocol().is_icmp();
        // Everything from the revoke instant on is after it: with the default instant (the
        // first packet or record), the first window's records too (the pessimistic side
        // where a log cannot tell whether a connection opened in its window).
        let ahead = s.ts_ns >= at;
        // Whether the opener is the source, when the item tells.
        let known = if tcp && flags & (SYN | ACK) == SYN {
            Some(true)
        } else if tcp && flags & (SYN | ACK) == SYN | ACK {
            Some(false)
        } else if icmp && is_echo_request(&h) {
            Some(true)
        } else if icmp && is_echo_reply(&h) {
            Some(false)
        } else if icmp {
            Some(true)
        } else {
            None
        };
        // Whether the opener itself was captured (a TCP item that is not a SYN joins a
        // connection opened earlier). A flow log sees every connection of its ENI: a TCP
        // record whose window saw a SYN opened it, and so did the first record of one
        // where the log has no `tcp-flags` (v2, the default format), as with UDP; a
        // connection open at the revoke instant has a record before it.
        let captured = known == Some(true)
            || !tcp
            || (s.record.is_some() && (s.flags & SYN != 0 || !s.flags_logged));
        let forward = |books: &mut Books| {
            let ends = judge.ends(s, &h, false);
            (books.fate_of(judge, ends, &h, captured && ahead), ends)
        };
        // A flow-log record of the reply opens the connection as well as one of the
        // opener would: both directions of a window are logged alike, in any order (a
        // reply packet seen first means the opener was not captured).
        let back_new = s.record.is_some() && captured && ahead;
        let back = |books: &mut Books| {
            let r = reverse(&h);
            let ends = judge.ends(s, &r, true);
            (books.fate_of(judge, ends, &r, back_new), ends)
        };
        let ((id, ends), opener_is_src) = match known {
            Some(true) => (forward(self), true),
            Some(false) => (back(self), false),
            // The higher port opens (the lower is the service); with equal ports, the
            // first item's direction, unless the rules before refuse it and accept the
            // other way.
            None => match h.src_port().cmp(&h.dst_port()) {
                Ordering::Greater => (forward(self), true),
                Ordering::Less => (back(self), false),
                Ordering::Equal => {
                    let f = forward(self);
                    let ff = self.fates[f.0 as usize];
                    if ff.before[0].act == Act::Accept || ff.unmatched {
                        (f, true)
                    } else {
                        let b = back(self);
                        if self.fates[b.0 as usize].before[0].act == Act::Accept {
                            (b, false)
                        } else {
                            (f, true)
                        }
                    }
                }
            },
        };
        Conn {
            key: k,
            first_ns: s.ts_ns,
            last_ns: s.until_ns,
            o_is_a: opener_is_src == src_is_a,
            flags: 0,
            flips: 0,
            gone: false,
            idle_s: u32::MAX,
            fate: id,
            ends: ends.map(|e| e.unwrap_or(NO_ENI)),
            packets: [[0; 2]; 2],
            bytes: [[0; 2]; 2],
        }
    }
}

#[cfg(test)]
impl<A> Conn<A> {
    /// A connection of no items yet with key `k`, last seen at `t`, of fate 0.
    pub(super) fn for_test(k: Key<A>, t: u64) -> Conn<A> {
        Conn {
            key: k,
            first_ns: 0,
            last_ns: t,
            o_is_a: true,
            flags: 0,
            flips: 0,
            gone: false,
            idle_s: u32::MAX,
            fate: 0,
            ends: [NO_ENI; 2],
            packets: [[0; 2]; 2],
            bytes: [[0; 2]; 2],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatif::traffic::judge::Step;
    use crate::whatif::traffic::keys::key_of;

    fn accept() -> Step {
        Step {
            act: Act::Accept,
            why: Why::Default,
            side: Side::Before,
        }
    }

    /// `count` keeps `idle_s` as of the last item without recomputing it for every item:
    /// it must equal the timeout computed afresh after each item, through direction
    /// changes (UDP turns into a stream at 3), one FIN, both FINs and an RST.
    #[test]
    fn count_keeps_the_idle_timeout_of_the_last_item() {
        for provider in [Provider::Aws, Provider::Aliyun, Provider::Generic] {
            for (protocol, flags) in [
                (
                    6,
                    [SYN, SYN | ACK, ACK, ACK, FIN | ACK, ACK, FIN | ACK, ACK],
                ),
                (6, [SYN, SYN | ACK, ACK, ACK, RST, ACK, ACK, ACK]),
                (17, [0; 8]),
            ] {
                let mut books = Books::default();
                let fate = books.fate_id(Fate {
                    before: [accept(); 2],
                    post: [accept(); 2],
                    fresh: accept(),
                    survive: false,
                    change: None,
                    others: [[None; 2]; 2],
                    provider,
                    unmatched: false,
                });
                let h = Header::new(
                    "10.0.0.1".parse().expect("address"),
                    "10.0.0.2".parse().expect("address"),
                    protocol,
                    40000,
                    443,
                )
                .expect("header");
                let (key, _) = key_of(&h, 0x0a00_0001u32, 0x0a00_0002, u32::MAX);
                let mut c = Conn {
                    key,
                    first_ns: 0,
                    last_ns: 0,
                    o_is_a: true,
                    flags: 0,
                    flips: 0,
                    gone: false,
                    idle_s: u32::MAX,
                    fate,
                    ends: [NO_ENI; 2],
                    packets: [[0; 2]; 2],
                    bytes: [[0; 2]; 2],
                };
                // Opener, reply, opener, opener, reply, ...: direction changes and runs.
                for (i, (&f, d)) in flags.iter().zip([0, 1, 0, 0, 1, 1, 0, 1]).enumerate() {
                    let s = Seen {
                        header: h,
                        ts_ns: i as u64 * SECOND,
                        until_ns: i as u64 * SECOND,
                        packets: 1,
                        bytes: 100,
                        flags: f,
                        flags_logged: true,
                        record: None,
                        logged: None,
                        reject: None,
                    };
                    books.count(&mut c, d, &s, 0);
                    let fresh = timeout(c.flags, c.flips, provider, protocol) / SECOND;
                    assert_eq!(
                        u64::from(c.idle_s),
                        fresh,
                        "{provider:?} protocol {protocol}, item {i}"
                    );
                }
                assert_eq!(c.packets.iter().flatten().sum::<u64>(), 8);
                if protocol == 17 {
                    assert!(c.flips >= 3, "{}", c.flips);
                }
            }
        }
    }
}
