#!/usr/bin/env python3
"""Independent packet-verdict oracle for sgsim snapshots (Python 3 standard library only).

Written from /work/shared/SEMANTICS.md sections 3.1-3.3 (Q8 revised 2026-12-06) and the
snapshot format of tests/data/suite/README.md -- deliberately NOT from sgsim's src/.

    judge(snapshot, eni_id, direction, packet) -> Judgement
    locations(snapshot, packet)               -> [(eni_id, direction), ...]

A packet is a dict: proto (IANA number), src, dst (ipaddress objects), sport, dport
(TCP/UDP only), itype, icode (ICMP/ICMPv6 only).

Semantics implemented (SEMANTICS tag in brackets):
  * Direction [3.1]: ingress rules judge packets arriving at the ENI (remote = source,
    local = destination); egress rules judge packets leaving (remote = destination,
    local = source).
  * Ports [3.1]: rules match the destination port; Alibaba quintuple rules may add a
    source-port range and a local prefix (ingress DestCidrIp / egress SourceCidrIp);
    a local side of 0.0.0.0/0 (or absent) means any [1.1, Q5].
  * Protocol -1 / all matches every protocol and port [3.1]; AWS protocol numbers other
    than tcp/udp/icmp/icmpv6 match on the number only [3.1, AWS-IPPERM].
  * AWS ICMP/ICMPv6 [3.1]: (type T, code C) matches (t, c) iff (T==-1 or T==t) and
    (C==-1 or C==c). In the snapshot, src_ports selects the type and dst_ports the code
    (tests/data/suite/README.md). Alibaba ICMP/ICMPv6/GRE: no type/code, -1/-1 = all.
  * Group peer [3.1]: remote address is a PRIVATE IP of an ENI carrying the group.
    Prefix list peer: remote address within any entry.
  * Unresolved [3.1 DECISION]: a prefix list the state lacks or holds without entries,
    or a group that no export describes and no ENI carries, may or may not hold the
    remote address (either family).  The oracle enumerates every combination of the
    unresolved references a packet touches ("exact") and reports `unknown` when the
    combinations give different verdicts.  It also computes the literal two-reading
    rule of the spec (all unresolved match nothing / all match everything, "readings"),
    so a differential run can tell the two apart.
  * AWS [3.2]: allow-only union over the rules of all groups on the ENI; no match => drop.
  * Alibaba [3.3 DECISION]: (0) the remote address is a member (private IP) of a basic
    group on this ENI whose inner_access is accept => accept (inner-access), ingress and
    egress, before every custom rule; else custom rules of all groups on the ENI for the
    direction sorted by (priority asc, drop before accept), first match decides; else
    defaults: basic inbound drop / outbound accept; enterprise drop both ways.
  * Where a packet is judged [3.1 DECISION]: at the ENI owning the destination (ingress)
    or the source (egress), private or public address; IPv4-mapped IPv6 addresses are
    IPv4 when both ends are mapped; a mix of mapped and native IPv6 is malformed (not
    judged).  Public addresses never make an ENI a member of a group.
"""

import ipaddress
import itertools
import json

TCP, UDP, ICMP, GRE, ICMPV6 = 6, 17, 1, 47, 58
PROTO_NAMES = {"tcp": TCP, "udp": UDP, "icmp": ICMP, "icmpv6": ICMPV6, "gre": GRE}
ANY = None  # protocol "any"


def parse_proto(p):
    if p is None:
        return ANY
    if isinstance(p, int):
        return ANY if p == -1 else p
    s = str(p).strip().lower()
    if s in ("-1", "all", "any"):
        return ANY
    if s in PROTO_NAMES:
        return PROTO_NAMES[s]
    return int(s)


def parse_range(r):
    """'22' | '1000-2000' | 'any' | '-1' | '-1/-1' | int | None -> (lo, hi) or None (any)."""
    if r is None:
        return None
    if isinstance(r, int):
        return None if r == -1 else (r, r)
    s = str(r).strip().lower()
    if s in ("", "any", "-1", "-1/-1", "-1--1"):
        return None
    for sep in ("-", "/"):
        if sep in s[1:]:
            i = s.index(sep, 1)
            a, b = int(s[:i]), int(s[i + 1:])
            if a == -1 and b == -1:
                return None
            return (a, b)
    v = int(s)
    return None if v == -1 else (v, v)


def in_range(rng, v):
    return rng is None or (v is not None and rng[0] <= v <= rng[1])


def unmap(a):
    if a.version == 6 and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def norm_packet(pkt):
    """Apply the IPv4-mapped rule; return None when the packet is malformed (mixed)."""
    s, d = pkt["src"], pkt["dst"]
    sm = s.version == 6 and s.ipv4_mapped is not None
    dm = d.version == 6 and d.ipv4_mapped is not None
    if sm and dm:
        pkt = dict(pkt, src=s.ipv4_mapped, dst=d.ipv4_mapped)
    elif sm or dm:
        if (s.version == 6) and (d.version == 6):
            return None
    return pkt


class Rule:
    def __init__(self, j, provider, variants=frozenset()):
        self.variants = variants
        self.id = j["id"]
        self.group = j["group"]
        self.direction = j["direction"]
        self.action = j.get("action", "accept").lower()
        # Alibaba Priority: 1..100, default 1 (S0, S1); variant: an absent one ranks as 0
        dflt = 0 if "missing-priority-0" in variants else 1
        self.priority = int(j.get("priority", dflt)) if provider == "aliyun" else None
        self.proto = parse_proto(j.get("protocol"))
        self.provider = provider
        self.dst_ports = parse_range(j.get("dst_ports"))
        self.src_ports = parse_range(j.get("src_ports"))
        rem = j.get("remote", {})
        if "cidr" in rem:
            self.kind, self.peer = "cidr", ipaddress.ip_network(rem["cidr"], strict=False)
        elif "group_id" in rem:
            self.kind, self.peer = "group", rem["group_id"]
        elif "prefix_list_id" in rem:
            self.kind, self.peer = "pl", rem["prefix_list_id"]
        else:
            raise ValueError("rule %s without remote" % self.id)
        loc = j.get("local")
        self.local = None
        if loc not in (None, ""):
            n = ipaddress.ip_network(loc, strict=False)
            if not (n.version == 4 and n.prefixlen == 0) or "local-v4-only" in variants:
                self.local = n  # 0.0.0.0/0 local = any [Q5]

    def matches_nonremote(self, pkt, local_addr):
        """Protocol, ports / ICMP selectors, local prefix -- everything but the remote peer."""
        p = pkt["proto"]
        if self.proto is not ANY and self.proto != p:
            return False
        if self.proto is not ANY:
            if p in (TCP, UDP):
                if not in_range(self.dst_ports, pkt.get("dport")):
                    return False
                if not in_range(self.src_ports, pkt.get("sport")):
                    return False
            elif p in (ICMP, ICMPV6) and self.provider == "aws":
                if not in_range(self.src_ports, pkt.get("itype")):  # type
                    return False
                if not in_range(self.dst_ports, pkt.get("icode")):  # code
                    return False
        if "ports-on-portless-rules" in self.variants and (
                self.proto is ANY or (self.provider == "aws" and self.proto not in (TCP, UDP, ICMP, ICMPV6))):
            # variant (not the spec): port ranges also apply to protocol -1 / other-number rules
            if p in (TCP, UDP):
                d, s = pkt.get("dport"), pkt.get("sport")
            elif p in (ICMP, ICMPV6):
                d, s = pkt.get("icode"), pkt.get("itype")
            else:
                d = s = 0
            if not in_range(self.dst_ports, d) or not in_range(self.src_ports, s):
                return False
        if self.local is not None:
            if local_addr.version != self.local.version or local_addr not in self.local:
                return False
        return True


class State:
    """variants: names of deliberate deviations from the spec, used only to classify
    disagreements ("which alternative reading would sgsim's answer follow?"):
      ports-on-portless-rules  port ranges apply to protocol -1 and AWS other-number rules
      local-v4-only            a local 0.0.0.0/0 is IPv4 only (not "any")
      independent-unresolved   each unresolved rule is its own unknown, even when rules
                               share one reference
      missing-priority-0       an Alibaba rule without priority ranks as 0 (before
                               every priority-1 rule) instead of the default 1
      inner-access-needs-member-local
                               inner access also needs the local address to be a member
                               private IP (3.3 bullet "source and destination are both
                               members") -- differs from the 3.3 algorithm step (0) only
                               when the packet is judged at a public address"""

    def __init__(self, snap, variants=frozenset()):
        self.variants = frozenset(variants)
        self.snap = snap
        self.groups = {g["id"]: g for g in snap.get("groups", [])}
        self.enis = {e["id"]: e for e in snap.get("enis", [])}
        self.pls = {p["id"]: p for p in snap.get("prefix_lists", [])}
        self.rules = []
        for r in snap.get("rules", []):
            g = self.groups.get(r["group"], {})
            self.rules.append(Rule(r, g.get("provider", "aws"), self.variants))
        self.rules_by_group = {}
        for r in self.rules:
            self.rules_by_group.setdefault(r.group, []).append(r)
        # group -> set of member private addresses
        self.members = {}
        self.private_owner = {}
        self.any_owner = {}
        for e in snap.get("enis", []):
            for ip in e.get("ips", []):
                a = unmap(ipaddress.ip_address(ip))
                self.private_owner[a] = e["id"]
                self.any_owner[a] = e["id"]
                for g in e.get("groups", []):
                    self.members.setdefault(g, set()).add(a)
            for ip in e.get("public_ips", []):
                self.any_owner[unmap(ipaddress.ip_address(ip))] = e["id"]
        self.carried = set()
        for e in snap.get("enis", []):
            self.carried.update(e.get("groups", []))
        self.pl_nets = {}
        for pid, p in self.pls.items():
            self.pl_nets[pid] = [ipaddress.ip_network(x if isinstance(x, str) else x.get("cidr"), strict=False)
                                 for x in p.get("entries") or []]

    def unresolved_ref(self, rule):
        """Key of the unresolved reference of a rule, or None when it resolves."""
        ref = None
        if rule.kind == "pl":
            if not self.pl_nets.get(rule.peer):
                ref = ("pl", rule.peer)
        elif rule.kind == "group":
            if rule.peer not in self.groups and rule.peer not in self.carried:
                ref = ("group", rule.peer)
        if ref is not None and "independent-unresolved" in self.variants:
            ref = ("rule", rule.id)
        return ref

    def remote_match(self, rule, remote):
        """True / False for resolved references."""
        if rule.kind == "cidr":
            return remote.version == rule.peer.version and remote in rule.peer
        if rule.kind == "group":
            return remote in self.members.get(rule.peer, ())
        return any(remote.version == n.version and remote in n for n in self.pl_nets.get(rule.peer, ()))


class Judgement:
    """verdict: accept|drop|unknown; reason: rule|default|inner-access|unresolved;
    rules: set of rule ids any of which may be named as deciding (ties, OR union),
    or the unresolved rules that can make the verdict unknown."""

    def __init__(self, verdict, reason, rules=(), readings_verdict=None):
        self.verdict = verdict
        self.reason = reason
        self.rules = set(rules)
        self.readings_verdict = readings_verdict  # the literal two-reading verdict

    def __repr__(self):
        return "Judgement(%s, %s, %s)" % (self.verdict, self.reason, sorted(self.rules))


def _decide(state, provider, eni, direction, cands, assign):
    """Verdict for one assignment of unresolved refs -> bool.
    cands: rules that match everything but possibly the remote, each with a remote
    status True/False/ref.  Returns (verdict, reason, set-of-deciding-rule-ids)."""
    live = [r for r, st in cands if (st is True) or (st not in (True, False) and assign[st])]
    if provider == "aws":
        if live:
            return "accept", "rule", {r.id for r in live}
        return "drop", "default", set()
    if live:
        best = min((r.priority, 0 if r.action == "drop" else 1) for r in live)
        ids = {r.id for r in live if (r.priority, 0 if r.action == "drop" else 1) == best}
        return ("drop" if best[1] == 0 else "accept"), "rule", ids
    kinds = {state.groups.get(g, {}).get("kind", "basic") for g in eni.get("groups", [])}
    if "enterprise" in kinds:
        return "drop", "default", set()
    return ("drop" if direction == "ingress" else "accept"), "default", set()


def judge(state, eni_id, direction, pkt):
    if not isinstance(state, State):
        state = State(state)
    eni = state.enis[eni_id]
    gids = eni.get("groups", [])
    provider = state.groups.get(gids[0], {}).get("provider", "aws") if gids else "aws"
    if direction == "ingress":
        remote, local = pkt["src"], pkt["dst"]
    else:
        remote, local = pkt["dst"], pkt["src"]
    if provider == "aliyun":
        for g in gids:
            gj = state.groups.get(g, {})
            if gj.get("kind", "basic") == "basic" and str(gj.get("inner_access", "accept")).lower() == "accept":
                if remote in state.members.get(g, ()):
                    if "inner-access-needs-member-local" in state.variants and local not in state.members.get(g, ()):
                        continue
                    return Judgement("accept", "inner-access", (), "accept")
    cands = []
    refs = []
    for g in gids:
        for r in state.rules_by_group.get(g, []):
            if r.direction != direction or not r.matches_nonremote(pkt, local):
                continue
            ref = state.unresolved_ref(r)
            if ref is None:
                if state.remote_match(r, remote):
                    cands.append((r, True))
            else:
                cands.append((r, ref))
                if ref not in refs:
                    refs.append(ref)
    if not refs:
        v, why, ids = _decide(state, provider, eni, direction, cands, {})
        return Judgement(v, why, ids, v)
    outcomes = {}
    for bits in itertools.product((False, True), repeat=len(refs)):
        assign = dict(zip(refs, bits))
        outcomes[bits] = _decide(state, provider, eni, direction, cands, assign)
    verdicts = {o[0] for o in outcomes.values()}
    lo = outcomes[tuple(False for _ in refs)]
    hi = outcomes[tuple(True for _ in refs)]
    readings = lo[0] if lo[0] == hi[0] else "unknown"
    if len(verdicts) == 1:
        # resolved answer stands; deciding rules: the resolved ones all combos agree on
        v = lo[0]
        return Judgement(v, lo[1], lo[2] | hi[2] if lo[1] == hi[1] else lo[2] | hi[2], readings)
    unres = {r.id for r, st in cands if st is not True}
    return Judgement("unknown", "unresolved", unres, readings)


def locations(state, pkt):
    """[(eni_id, direction)] where the packet is judged; [] also when malformed."""
    if not isinstance(state, State):
        state = State(state)
    p = norm_packet(pkt)
    if p is None:
        return []
    out = []
    if p["src"] in state.any_owner:
        out.append((state.any_owner[p["src"]], "egress"))
    if p["dst"] in state.any_owner:
        out.append((state.any_owner[p["dst"]], "ingress"))
    return out


def judge_all(state, pkt):
    if not isinstance(state, State):
        state = State(state)
    p = norm_packet(pkt)
    if p is None:
        return []
    return [(e, d, judge(state, e, d, p)) for e, d in locations(state, p)]


def parse_packet(text):
    """The suite's packet syntax: 'tcp 10.0.0.1:4 -> 10.0.0.5:22', 'icmp A -> B type 8 code 0'."""
    toks = text.split()
    proto = toks[0].lower()
    proto = PROTO_NAMES[proto] if proto in PROTO_NAMES else int(proto)

    def ep(s):
        if s.startswith("["):
            a, _, rest = s[1:].partition("]")
            return ipaddress.ip_address(a), (int(rest[1:]) if rest.startswith(":") else None)
        if s.count(":") == 1:
            a, p = s.split(":")
            return ipaddress.ip_address(a), int(p)
        return ipaddress.ip_address(s), None
    src, sp = ep(toks[1])
    dst, dp = ep(toks[3])
    pkt = {"proto": proto, "src": src, "dst": dst}
    if proto in (TCP, UDP):
        pkt.update(sport=sp, dport=dp)
    if proto in (ICMP, ICMPV6) and "type" in toks:
        pkt.update(itype=int(toks[toks.index("type") + 1]), icode=int(toks[toks.index("code") + 1]))
    return pkt


def _selftest_suite(path):
    """Run the oracle over one behaviour-suite file; print mismatches."""
    with open(path) as f:
        sc = json.load(f)
    st = State(sc["state"])
    bad = 0
    for c in sc["cases"]:
        eni, d = c["at"].split()
        j = judge(st, eni, d, norm_packet(parse_packet(c["packet"])))
        v, _, who = c["expect"].split(" ", 2)
        ok = j.verdict == v and ((who in ("default",) and j.reason == "default")
                                 or (who == "inner-access" and j.reason == "inner-access")
                                 or who in j.rules)
        if not ok:
            bad += 1
            print("MISMATCH %s: %s %s expect %s got %r" % (path, c["at"], c["packet"], c["expect"], j))
    return bad


if __name__ == "__main__":
    import sys
    n = 0
    for p in sys.argv[1:]:
        n += _selftest_suite(p)
    print("mismatches:", n)
    sys.exit(1 if n else 0)
