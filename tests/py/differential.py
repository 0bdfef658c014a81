#!/usr/bin/env python3
"""Differential check: `sgsim eval --stateless` against the independent oracle (oracle.py).

Usage (Python 3 standard library only):

    export CARGO_TARGET_DIR=/work/target-oracle && cargo build --release
    python3 tests/py/differential.py --seed 1 --judgements 8000 \
        --sgsim $CARGO_TARGET_DIR/release/sgsim --threshold 99.5

Generates seeded random snapshots for both clouds (AWS and Alibaba; several groups,
ENIs with overlapping group sets, IPv4 and IPv6, private and public addresses, group
references -- carried, described without members, and described by nobody --, prefix
lists -- with entries, with none, missing --, Alibaba quintuple local prefixes and
source ports, priorities, drop rules, inner access accept/drop, enterprise groups, ICMP
rules with type/code selectors on AWS) and random packets, written two ways:

  * a raw-IP pcap (LINKTYPE_RAW): sgsim decides where each packet is judged (SEMANTICS
    3.1 "where a packet is judged"), so location is compared too; ICMP goes only here;
  * a flow log naming the ENI and direction: AWS custom format with `flow-direction`
    for AWS scenarios, Alibaba JSON lines (`eni-id`, `direction`) for Alibaba ones.

Each sgsim judgement (packet index, ENI, direction, verdict, reason, rule) is compared
with the oracle's; the run prints the number of judgements, the agreement in percent and
each disagreement class with a minimal example (smallest snapshot).  Exit status 1 when
the agreement is below --threshold (percent), 2 on a harness error.

A judgement agrees when the verdict is equal and the reason is compatible: the rule sgsim
names is one the oracle accepts as deciding (any matching allow rule on AWS; any
matching rule of the best (priority, drop-first) rank on Alibaba; any unresolved rule
that can make the verdict unknown), or both say default / inner-access.
"""

import argparse
import atexit
import collections
import ipaddress
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402

TCP, UDP, ICMP, GRE, ICMPV6 = 6, 17, 1, 47, 58
PORTS = [22, 25, 53, 80, 443, 1000, 1500, 2000, 3306, 5432, 8000, 8080, 8100]
RANGES = ["22", "53", "80", "443", "1000-2000", "8000-8100", "3306", "1-1024", "1024-65535", "any", "5432"]
EXTERNAL4 = ["8.8.8.8", "198.51.100.7", "203.0.113.5", "203.0.113.200", "192.0.2.1", "100.64.0.9"]
EXTERNAL6 = ["2001:db8:ff::1", "2001:db8:aa::9", "2400:cb00::1"]


# ---------------------------------------------------------------- generation

class Gen:
    def __init__(self, rng, provider, sid):
        self.r = rng
        self.provider = provider
        self.sid = sid

    def snapshot(self, large=0):
        if large:
            return self.large_snapshot(large)
        r = self.r
        ngroups = r.randint(2, 5)
        groups = []
        kinds = {}
        ent_scenario = self.provider == "aliyun" and r.random() < 0.3
        for i in range(ngroups):
            gid = "sg-%d" % i
            g = {"id": gid, "provider": self.provider}
            if self.provider == "aws":
                g["vpc"] = "vpc-1"
            else:
                kind = "enterprise" if (ent_scenario and r.random() < 0.6) else "basic"
                g["kind"] = kind
                # enterprise groups get an inner_access too, sometimes accept: it must be ignored
                g["inner_access"] = r.choice(["accept", "drop"]) if kind == "basic" or r.random() < 0.5 else "drop"
                kinds[gid] = kind
            groups.append(g)
        # a described group no ENI carries
        groups.append({"id": "sg-empty", "provider": self.provider, **({"vpc": "vpc-1"} if self.provider == "aws" else {"kind": "basic", "inner_access": "accept"})})
        kinds["sg-empty"] = "basic"
        gids = [g["id"] for g in groups[:-1]]
        basic = [g for g in gids if kinds.get(g, "basic") == "basic"]
        ent = [g for g in gids if kinds.get(g) == "enterprise"]
        enis = []
        self.addrs4, self.addrs6, self.pub = [], [], []
        neni = r.randint(3, 7)
        for i in range(neni):
            if self.provider == "aliyun" and ent and basic:
                pool = r.choice([basic, ent])  # one kind per ENI (ALI-BASIC-ADV)
            else:
                pool = gids
            k = r.randint(1, min(3, len(pool)))
            e = {"id": "eni-%d" % i, "groups": r.sample(pool, k)}
            if self.provider == "aws" and r.random() < 0.15:
                e["groups"].append("sg-undescribed")
            sub = r.choice([1, 2])
            ips = ["10.%d.0.%d" % (sub, 10 + i)]
            if r.random() < 0.3:
                ips.append("10.%d.1.%d" % (sub, 10 + i))
            if r.random() < 0.5:
                ips.append("2001:db8:%d::%x" % (sub, 0x10 + i))
            e["ips"] = ips
            if r.random() < 0.4:
                e["public_ips"] = ["47.0.%d.%d" % (sub, 10 + i)]
                self.pub += e["public_ips"]
            for a in ips:
                (self.addrs6 if ":" in a else self.addrs4).append(a)
            enis.append(e)
        pls = [{"id": "pl-a", "entries": ["198.51.100.0/24", "10.2.0.0/16", "2001:db8:ff::/48"]},
               {"id": "pl-b", "entries": ["203.0.113.0/25", "10.1.0.%d/32" % (10 + r.randrange(neni))]},
               {"id": "pl-empty", "entries": []}]
        rules = []
        for g in gids:
            for d in ("ingress", "egress"):
                for k in range(r.randint(0, 6)):
                    rules.append(self.rule("%s-%s%d" % (g, d[0], k), g, d, kinds.get(g, "basic"), gids))
        self.rules = rules
        return {"sgsim_snapshot": 1, "groups": groups, "enis": enis, "prefix_lists": pls, "rules": rules}

    def large_snapshot(self, n):
        """One group of n IPv4 rules on its own ENI (plus a small group elsewhere): sgsim
        compiles such a group into cross-product tables (>= 512 rules) or trees starting
        from address blocks (>= 1,024 narrow rules), paths small scenarios never take."""
        r = self.r
        narrow = r.random() < 0.5
        gl = {"id": "sg-big", "provider": self.provider}
        gs = {"id": "sg-small", "provider": self.provider}
        for g in (gl, gs):
            if self.provider == "aws":
                g["vpc"] = "vpc-1"
            else:
                g.update(kind="basic", inner_access="drop")
        enis = [{"id": "eni-big", "ips": ["10.200.0.1"], "groups": ["sg-big"]},
                {"id": "eni-small", "ips": ["10.201.0.1"], "public_ips": ["47.9.9.9"], "groups": ["sg-small"]}]
        self.addrs4, self.addrs6, self.pub = ["10.200.0.1", "10.201.0.1"], [], ["47.9.9.9"]
        self.big_cidrs = []
        rules = []
        for k in range(n):
            d = "ingress" if r.random() < 0.7 else "egress"
            if narrow:
                plen = r.randint(20, 32)
                base = (r.choice([10, 172, 198, 100]) << 24) | (r.randrange(1 << 24))
            else:
                plen = r.choice([0, 8, 12, 16, 16, 20, 24, 24, 28, 32, 32])
                base = (r.choice([10, 172, 198, 100, 8]) << 24) | (r.randrange(1 << 24))
            net = ipaddress.ip_network((base, plen), strict=False)
            self.big_cidrs.append(net)
            x = r.random()
            proto = "tcp" if x < 0.5 else "udp" if x < 0.8 else ("-1" if x < 0.9 else "icmp")
            rule = {"id": "big-%d" % k, "group": "sg-big", "direction": d, "protocol": proto,
                    "remote": {"cidr": str(net)}}
            if proto in ("tcp", "udp"):
                lo = r.choice([0, 1, 22, 80, 443, 1024, 3306, 8000, r.randint(1, 65535)])
                lo = max(1, lo)
                hi = r.choice([lo, lo, min(65535, lo + r.randint(0, 2000)), 65535])
                rule["dst_ports"] = "%d-%d" % (lo, hi) if hi != lo else str(lo)
                if self.provider == "aliyun" and r.random() < 0.15:
                    rule["src_ports"] = r.choice(["1024-65535", "1-1023"])
            elif proto == "icmp" and self.provider == "aws" and r.random() < 0.6:
                rule["src_ports"] = str(r.choice([0, 3, 8, 11]))
            if self.provider == "aliyun":
                rule["action"] = "drop" if r.random() < 0.4 else "accept"
                rule["priority"] = r.randint(1, 100)
                if r.random() < 0.1:
                    rule["local"] = r.choice(["10.200.0.0/16", "10.200.0.1/32", "10.201.0.0/16"])
            else:
                rule["action"] = "accept"
            rules.append(rule)
        for k in range(4):
            rules.append({"id": "small-%d" % k, "group": "sg-small", "direction": r.choice(["ingress", "egress"]),
                          "protocol": r.choice(["tcp", "udp", "-1"]), "action": "accept",
                          "remote": {"cidr": r.choice(["0.0.0.0/0", "10.0.0.0/8"])},
                          **({"priority": r.randint(1, 100)} if self.provider == "aliyun" else {})})
        return {"sgsim_snapshot": 1, "groups": [gl, gs], "enis": enis, "prefix_lists": [], "rules": rules}

    def big_packet(self):
        r = self.r
        net = r.choice(self.big_cidrs)
        if net.prefixlen == 0:
            a = ipaddress.IPv4Address(r.randrange(1 << 32))
        else:
            a = net.network_address + r.randrange(net.num_addresses)
        if r.random() < 0.2:
            a = net.network_address + (net.num_addresses if net.prefixlen else 0)  # just outside
            a = ipaddress.IPv4Address(int(a) % (1 << 32))
        local = ipaddress.ip_address(r.choice(["10.200.0.1", "10.200.0.1", "10.201.0.1", "47.9.9.9"]))
        if a == local:
            return None
        x = r.random()
        proto = TCP if x < 0.5 else UDP if x < 0.85 else ICMP if x < 0.95 else GRE
        src, dst = (a, local) if r.random() < 0.7 else (local, a)
        pkt = {"proto": proto, "src": src, "dst": dst}
        if proto in (TCP, UDP):
            pkt["sport"] = r.choice([r.randint(1, 65535), 1023, 1024, 40000])
            pkt["dport"] = r.choice([22, 80, 443, 1024, 3306, 8000, 65535, r.randint(1, 65535)])
        elif proto == ICMP:
            pkt["itype"], pkt["icode"] = r.choice([0, 3, 8, 11]), r.choice([0, 1])
        return pkt

    def remote(self, kind, gids, fam):
        r = self.r
        x = r.random()
        if x < 0.12 and kind != "enterprise":
            return {"group_id": r.choice(gids + ["sg-empty", "sg-ghost"]
                                         + (["sg-undescribed"] if self.provider == "aws" else []))}
        if x < 0.22:
            return {"prefix_list_id": r.choice(["pl-a", "pl-b", "pl-empty", "pl-missing"])}
        if fam == 6:
            return {"cidr": r.choice(["::/0", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:ff::/48",
                                      "2001:db8:2::%x/128" % (0x10 + r.randrange(7))])}
        return {"cidr": r.choice(["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "198.51.100.0/24",
                                  "203.0.113.0/24", "10.1.0.%d/32" % (10 + r.randrange(7)),
                                  "10.2.0.0/25", "47.0.0.0/8", "192.0.2.0/24", "10.1.0.77/16",
                                  "198.51.100.9/25"])}

    def rule(self, rid, g, d, kind, gids):
        r = self.r
        fam = 6 if r.random() < 0.25 else 4
        rule = {"id": rid, "group": g, "direction": d}
        x = r.random()
        if x < 0.35:
            proto = "tcp"
        elif x < 0.55:
            proto = "udp"
        elif x < 0.65:
            proto = "icmpv6" if fam == 6 else "icmp"
        elif x < 0.8:
            proto = r.choice(["-1", "all"]) if self.provider == "aliyun" else r.choice(["-1", -1])
        elif x < 0.88:
            proto = "gre"
        else:
            proto = r.choice([6, 17, 132, 50]) if self.provider == "aws" else r.choice(["tcp", "udp", "gre"])
        if self.provider == "aws" and proto in ("tcp", "udp") and r.random() < 0.15:
            proto = {"tcp": "6", "udp": "17"}[proto]
        if isinstance(proto, str) and proto.isalpha() and r.random() < 0.1:
            proto = proto.upper()
        rule["protocol"] = proto
        p = oracle.parse_proto(proto)
        if p in (TCP, UDP):
            rule["dst_ports"] = r.choice(RANGES)
            if self.provider == "aliyun" and r.random() < 0.2:
                rule["src_ports"] = r.choice(["1024-65535", "1-1023", "53", "40000-50000"])
        elif p not in (ICMP, ICMPV6) and self.provider == "aws" and r.random() < 0.3:
            rule["dst_ports"] = r.choice(["22", "0-100", "5000-6000"])  # ignored (AWS-IPPERM)
        elif p in (ICMP, ICMPV6) and self.provider == "aws":
            y = r.random()
            if y < 0.3:
                pass
            elif y < 0.6:
                rule["src_ports"] = str(r.choice([0, 3, 8, 11, 128, 129, 135]))
            else:
                rule["src_ports"] = str(r.choice([0, 3, 8, 128]))
                rule["dst_ports"] = str(r.choice([0, 1, 3, 4]))
        if self.provider == "aliyun":
            rule["action"] = "drop" if r.random() < 0.35 else "accept"
            rule["priority"] = r.choice([1, 1, 5, 10, 50, 100, r.randint(1, 100)])
            if r.random() < 0.05:
                del rule["priority"]  # default 1 (S0, S1)
        else:
            rule["action"] = "accept"
        rule["remote"] = self.remote(kind, gids, fam)
        if p == ICMP:
            if "cidr" in rule["remote"] and ":" in rule["remote"]["cidr"]:
                rule["remote"] = {"cidr": "0.0.0.0/0"}
        if p == ICMPV6:
            if "cidr" in rule["remote"] and ":" not in rule["remote"]["cidr"]:
                rule["remote"] = {"cidr": "::/0"}
        if self.provider == "aliyun" and r.random() < 0.2:
            rfam = 6 if ("cidr" in rule["remote"] and ":" in rule["remote"]["cidr"]) else 4
            if rfam == 6:
                rule["local"] = r.choice(["2001:db8:1::/48", "2001:db8:2::%x/128" % (0x10 + r.randrange(7))])
            else:
                rule["local"] = r.choice(["0.0.0.0/0", "10.1.0.0/16", "10.2.0.0/24",
                                          "10.1.0.%d/32" % (10 + r.randrange(7)), "10.2.1.0/24"])
        return rule

    def address(self, fam, snap):
        r = self.r
        x = r.random()
        if fam == 4:
            if x < 0.45:
                return r.choice(self.addrs4)
            if x < 0.55 and self.pub:
                return r.choice(self.pub)
            if x < 0.8:
                return r.choice(EXTERNAL4)
            return "10.%d.%d.%d" % (r.choice([1, 2, 3]), r.choice([0, 1]), r.randint(1, 254))
        if x < 0.55 and self.addrs6:
            return r.choice(self.addrs6)
        if x < 0.8:
            return r.choice(EXTERNAL6)
        return "2001:db8:%d::%x" % (r.choice([1, 2]), r.randint(1, 0x30))

    def packet(self, snap, owned):
        """A packet with at least one endpoint an ENI owns (any family, any protocol)."""
        r = self.r
        for _ in range(100):
            fam = 6 if (self.addrs6 and r.random() < 0.3) else 4
            a, b = self.address(fam, snap), self.address(fam, snap)
            if a == b or (a not in owned and b not in owned):
                continue
            x = r.random()
            if x < 0.4:
                proto = TCP
            elif x < 0.7:
                proto = UDP
            elif x < 0.85:
                proto = ICMPV6 if fam == 6 else ICMP
            elif x < 0.93:
                proto = GRE
            else:
                proto = r.choice([132, 50, 89])
            pkt = {"proto": proto, "src": ipaddress.ip_address(a), "dst": ipaddress.ip_address(b)}
            if proto in (TCP, UDP):
                pkt["sport"] = r.choice([r.randint(1, 65535), r.randint(1024, 65535), 53, 1023, 1024, 40000])
                pkt["dport"] = r.choice(PORTS + [p + r.choice([-1, 1]) for p in PORTS] + [r.randint(1, 65535)])
            elif proto in (ICMP, ICMPV6):
                if proto == ICMP:
                    pkt["itype"] = r.choice([0, 3, 8, 11, 13])
                else:
                    pkt["itype"] = r.choice([128, 129, 135, 1, 3])
                pkt["icode"] = r.choice([0, 0, 1, 3, 4])
            if r.random() < 0.01 and fam == 6:
                pkt["dst"] = ipaddress.ip_address("::ffff:10.1.0.10")
            elif r.random() < 0.03 and fam == 4:
                # IPv4-mapped IPv6 on both ends: judged as IPv4 (SEMANTICS 3.1)
                pkt["mapped"] = True
            return pkt
        return None


# ---------------------------------------------------------------- writers

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def l4(pkt):
    p = pkt["proto"]
    if p == TCP:
        return struct.pack("!HHIIBBHHH", pkt["sport"], pkt["dport"], 1, 0, 0x50, 0x02, 65535, 0, 0)
    if p == UDP:
        return struct.pack("!HHHH", pkt["sport"], pkt["dport"], 8, 0)
    if p in (ICMP, ICMPV6):
        return struct.pack("!BBHI", pkt["itype"], pkt["icode"], 0, 0)
    if p == GRE:
        return struct.pack("!HH", 0, 0x0800)
    return b"\0" * 8


def ip_bytes(pkt):
    s, d = pkt["src"], pkt["dst"]
    pay = l4(pkt)
    if pkt.get("mapped"):
        s = ipaddress.IPv6Address("::ffff:" + str(s))
        d = ipaddress.IPv6Address("::ffff:" + str(d))
    if s.version == 4:
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(pay), 1, 0, 64, pkt["proto"], 0, s.packed, d.packed)
        h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
        return h + pay
    return struct.pack("!IHBB16s16s", 0x60000000, len(pay), pkt["proto"], 64, s.packed, d.packed) + pay


def write_pcap(path, pkts):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # LINKTYPE_RAW
        for i, p in enumerate(pkts):
            b = ip_bytes(p)
            f.write(struct.pack("<IIII", 1718000000 + i, 0, len(b), len(b)))
            f.write(b)


def write_flowlog(path, recs, provider, rng):
    """recs: [(pkt, eni, direction)].  AWS custom format with flow-direction, or Alibaba JSON lines."""
    with open(path, "w") as f:
        if provider == "aws":
            f.write("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
                    "start end action log-status flow-direction\n")
        for i, (p, eni, d) in enumerate(recs):
            sp = p.get("sport", 0)
            dp = p.get("dport", 0)
            act = rng.choice(["ACCEPT", "REJECT"])
            t = 1718000000 + 100 * i
            if provider == "aws":
                f.write("5 123456789012 %s %s %s %d %d %d 1 40 %d %d %s OK %s\n"
                        % (eni, p["src"], p["dst"], sp, dp, p["proto"], t, t + 60, act, d))
            else:
                f.write(json.dumps({"__topic__": "flow_log", "version": "1", "eni-id": eni,
                                    "srcaddr": str(p["src"]), "srcport": str(sp), "dstaddr": str(p["dst"]),
                                    "dstport": str(dp), "protocol": str(p["proto"]),
                                    "direction": "in" if d == "ingress" else "out", "packets": "1",
                                    "bytes": "40", "start": str(t), "end": str(t + 60), "log-status": "OK",
                                    "action": act, "tcp-flags": "2"}) + "\n")


# ---------------------------------------------------------------- running and comparing

def run_sgsim(sgsim, state, traffic):
    pr = subprocess.run([sgsim, "eval", "--stateless", "--state", state, "--traffic", traffic],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if pr.returncode != 0:
        raise RuntimeError("sgsim failed (%d): %s" % (pr.returncode, pr.stderr.decode()[-2000:]))
    out = {}
    for line in pr.stdout.decode().splitlines():
        if not line.strip():
            continue
        o = json.loads(line)
        if "summary" in o:
            continue
        out.setdefault((o["index"], o["eni"], o["direction"]), []).append(o)
    return out


def pkt_text(p):
    def ep(a, port):
        if port is None:
            return str(a)
        return ("[%s]:%d" if a.version == 6 else "%s:%d") % (a, port)
    name = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMPV6: "icmpv6", GRE: "gre"}.get(p["proto"], str(p["proto"]))
    s = "%s %s -> %s" % (name, ep(p["src"], p.get("sport")), ep(p["dst"], p.get("dport")))
    if "itype" in p:
        s += " type %d code %d" % (p["itype"], p["icode"])
    if p.get("mapped"):
        s += " (as IPv4-mapped IPv6)"
    return s


def expect_text(j):
    if j is None:
        return "(not judged)"
    if j.reason == "inner-access":
        return "accept by inner-access"
    if j.reason == "default":
        return "%s by default" % j.verdict
    return "%s by %s" % (j.verdict, "|".join(sorted(j.rules)))


def sgsim_text(o):
    if o is None:
        return "(not judged)"
    if o.get("detail") == "inner-access":
        return "%s by inner-access" % o["verdict"]
    if o["reason"] == "default":
        return "%s by default" % o["verdict"]
    return "%s by %s (%s)" % (o["verdict"], o.get("rule_id"), o["reason"])


def agree(j, o):
    if j is None or o is None:
        return j is None and o is None
    if j.verdict != o["verdict"]:
        return False
    if j.reason == "inner-access":
        return o.get("detail") == "inner-access"
    if o.get("detail") == "inner-access":
        return False
    if j.reason == "default":
        return o["reason"] == "default"
    return o.get("rule_id") in j.rules


VARIANTS = ["ports-on-portless-rules", "local-v4-only", "independent-unresolved", "missing-priority-0"]


def explain(snap, eni, d, pkt, o):
    """The smallest set of alternative readings (oracle.State variants) under which the
    oracle would give sgsim's answer, or None."""
    import itertools
    for n in (1, 2):
        for vs in itertools.combinations(VARIANTS, n):
            st = oracle.State(snap, vs)
            pn = oracle.norm_packet(dict(pkt))
            if pn is None or (eni, d) not in oracle.locations(st, pn):
                continue
            if agree(oracle.judge(st, eni, d, pn), o):
                return "+".join(vs)
    return None


def features(st, snap, eni, d, pkt, j, o):
    """Labels grouping disagreements into classes: the alternative reading that explains
    sgsim's answer, then provider, direction and the two answers."""
    f = []
    if j is not None and o is not None:
        f.append("[%s]" % (explain(snap, eni, d, pkt, o) or "unexplained"))
    else:
        f.append("[location]")
    prov = snap["groups"][0]["provider"]
    f.append(prov)
    f.append(d)
    if j is None or o is None:
        f.append("location")
        f.append("owner-public" if any(str(a) in sum((e.get("public_ips", []) for e in snap["enis"]), [])
                                      for a in (pkt["src"], pkt["dst"])) else "owner-private")
        if pkt.get("mapped"):
            f.append("mapped")
        return tuple(f)
    f.append("oracle:%s/%s" % (j.verdict, j.reason))
    f.append("sgsim:%s/%s%s" % (o["verdict"], o["reason"], "/inner" if o.get("detail") == "inner-access" else ""))
    if j.verdict == "unknown" or o["verdict"] == "unknown":
        if j.readings_verdict == o["verdict"]:
            f.append("two-readings-agree-with-sgsim")
    if j.verdict == o["verdict"] and j.reason == "rule" and o["reason"] == "rule":
        f.append("other-rule-named")
    if "itype" in pkt:
        f.append("icmp")
    if pkt.get("mapped"):
        f.append("mapped")
    return tuple(f)


def minimize(snap, eni, d, pkt, sgsim, tmp, want_disagree):
    """Drop rules/ENIs/groups one by one while the disagreement persists (bounded)."""
    cur = json.loads(json.dumps(snap))

    def still(s):
        try:
            st = oracle.State(s)
        except Exception:
            return False
        if eni not in st.enis:
            return False
        path = os.path.join(tmp, "min.json")
        with open(path, "w") as f:
            json.dump(s, f)
        pc = os.path.join(tmp, "min.pcap")
        write_pcap(pc, [pkt])
        try:
            out = run_sgsim(sgsim, path, pc)
        except Exception:
            return False
        j = None
        p = oracle.norm_packet(dict(pkt))
        if p is not None and (eni, d) in oracle.locations(st, p):
            j = oracle.judge(st, eni, d, p)
        o = out.get((0, eni, d), [None])[0]
        return want_disagree(j, o)

    for key in ("rules", "enis", "groups", "prefix_lists"):
        i = 0
        budget = 60
        while i < len(cur.get(key, [])) and budget > 0:
            budget -= 1
            trial = json.loads(json.dumps(cur))
            item = trial[key].pop(i)
            if key == "groups":
                if any(item["id"] in e["groups"] for e in trial["enis"]) or \
                        any(r["group"] == item["id"] for r in trial["rules"]):
                    i += 1
                    continue
            if key == "enis" and item["id"] == eni:
                i += 1
                continue
            if still(trial):
                cur = trial
            else:
                i += 1
    # memberships and addresses of the ENIs, then whole objects again
    for k in range(len(cur["enis"])):
        for field in ("groups", "ips", "public_ips"):
            i = 0
            while i < len(cur["enis"][k].get(field, [])):
                trial = json.loads(json.dumps(cur))
                trial["enis"][k][field].pop(i)
                if not trial["enis"][k][field]:
                    del trial["enis"][k][field]
                    if field != "public_ips":
                        i += 1
                        continue
                if still(trial):
                    cur = trial
                    if field not in cur["enis"][k]:
                        break
                else:
                    i += 1
    for key in ("rules", "enis", "groups", "prefix_lists"):
        i = 0
        budget = 60
        while i < len(cur.get(key, [])) and budget > 0:
            budget -= 1
            trial = json.loads(json.dumps(cur))
            item = trial[key].pop(i)
            if key == "groups":
                if any(item["id"] in e["groups"] for e in trial["enis"]) or \
                        any(r["group"] == item["id"] for r in trial["rules"]):
                    i += 1
                    continue
            if key == "enis" and item["id"] == eni:
                i += 1
                continue
            if still(trial):
                cur = trial
            else:
                i += 1
    return cur


def suite_text(o):
    """sgsim's eval answer in the behaviour suite's `expect` syntax."""
    if o is None:
        return "(not judged)"
    if o.get("detail") == "inner-access":
        return "%s by inner-access" % o["verdict"]
    if o["reason"] == "default":
        return "%s by default" % o["verdict"]
    return "%s by %s" % (o["verdict"], o.get("rule_id"))


def run_suite(files, sgsim, tmp):
    """Judge behaviour-suite files with `sgsim eval --stateless` (CLI, pcap path) and with
    the oracle; print every case either one gets wrong.  Returns the number of such cases."""
    bad = 0
    for path in files:
        with open(path) as f:
            sc = json.load(f)
        snap = dict(sc["state"], sgsim_snapshot=1)
        st = oracle.State(snap)
        pkts = [oracle.parse_packet(c["packet"]) for c in sc["cases"]]
        sp, pp = os.path.join(tmp, "suite.json"), os.path.join(tmp, "suite.pcap")
        with open(sp, "w") as f:
            json.dump(snap, f)
        write_pcap(pp, pkts)
        out = run_sgsim(sgsim, sp, pp)
        for i, c in enumerate(sc["cases"]):
            eni, d = c["at"].split()
            got = suite_text((out.get((i, eni, d)) or [None])[0])
            j = oracle.judge(st, eni, d, oracle.norm_packet(dict(pkts[i])))
            v, _, who = c["expect"].split(" ", 2)
            ok_oracle = j.verdict == v and ((who == "default" and j.reason == "default")
                                            or (who == "inner-access" and j.reason == "inner-access")
                                            or who in j.rules)
            if got != c["expect"] or not ok_oracle:
                bad += 1
                print("%s: %s at %s: expect '%s', sgsim '%s'%s" % (os.path.basename(path), c["packet"], c["at"],
                      c["expect"], got, "" if ok_oracle else ", oracle %r" % j))
    print("suite cases wrong: %d" % bad)
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", nargs="+", metavar="FILE",
                    help="instead: judge behaviour-suite files with the sgsim CLI and the oracle")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--judgements", type=int, default=8000)
    ap.add_argument("--sgsim", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "sgsim"))
    ap.add_argument("--threshold", type=float, default=99.5, help="minimum agreement in percent")
    ap.add_argument("--per-scenario", type=int, default=200, help="judgements per random snapshot")
    ap.add_argument("--large-every", type=int, default=5,
                    help="every Nth snapshot holds one group of 600-1,500 rules (0: never)")
    ap.add_argument("--keep", help="directory to keep the generated files in")
    ap.add_argument("--no-minimize", action="store_true")
    ap.add_argument("--show", type=int, default=1, help="examples printed per class")
    args = ap.parse_args()

    tmp = args.keep or tempfile.mkdtemp(prefix="sgsim-diff-")
    os.makedirs(tmp, exist_ok=True)
    if not args.keep:
        # The generated files go with the run (each run wrote about 14 MB and left it).
        atexit.register(shutil.rmtree, tmp, True)
    if args.suite:
        return 1 if run_suite(args.suite, args.sgsim, tmp) else 0
    total = agreed = 0
    classes = collections.OrderedDict()
    by_path = collections.Counter()
    cov = collections.Counter()
    scen = 0
    while total < args.judgements:
        rng = random.Random(args.seed * 100003 + scen)
        provider = "aws" if scen % 2 == 0 else "aliyun"
        g = Gen(rng, provider, scen)
        large = 0
        if args.large_every and scen % args.large_every == args.large_every - 1:
            large = rng.choice([600, 900, 1200, 1500])
        snap = g.snapshot(large)
        st = oracle.State(snap)
        owned = set(str(a) for a in st.any_owner)
        pkts, judged = [], 0
        while judged < args.per_scenario * 0.7:
            p = g.big_packet() if large else g.packet(snap, owned)
            if p is None:
                continue
            pkts.append(p)
            judged += max(1, len(oracle.locations(st, p)))
        recs = []
        for p in pkts:
            if p["proto"] in (ICMP, ICMPV6) or p.get("mapped"):
                continue
            for e, d in oracle.locations(st, p):
                if rng.random() < 0.45:
                    recs.append((p, e, d))
        base = os.path.join(tmp, "s%03d" % scen)
        with open(base + ".json", "w") as f:
            json.dump(snap, f, indent=1)
        write_pcap(base + ".pcap", pkts)
        write_flowlog(base + ".log", recs, provider, rng)
        runs = [("pcap", base + ".pcap"), ("flowlog", base + ".log")]
        for kind, path in runs:
            out = run_sgsim(args.sgsim, base + ".json", path)
            if kind == "pcap":
                items = []
                for i, p in enumerate(pkts):
                    pn = oracle.norm_packet(dict(p))
                    exp = {(e, d): j for e, d, j in oracle.judge_all(st, pn)} if pn else {}
                    keys = set(exp) | {(k[1], k[2]) for k in out if k[0] == i}
                    for e, d in sorted(keys):
                        items.append((i, p, e, d, exp.get((e, d)), (out.get((i, e, d)) or [None])[0]))
            else:
                items = []
                for i, (p, e, d) in enumerate(recs):
                    j = oracle.judge(st, e, d, oracle.norm_packet(dict(p)))
                    items.append((i, p, e, d, j, (out.get((i, e, d)) or [None])[0]))
            for i, p, e, d, j, o in items:
                total += 1
                by_path[kind] += 1
                cov[(provider, j.verdict + "/" + j.reason) if j else (provider, "not judged")] += 1
                if j and j.readings_verdict != j.verdict:
                    cov[(provider, "combos differ from two readings")] += 1
                if p.get("mapped"):
                    cov[(provider, "mapped")] += 1
                if large:
                    cov[(provider, "in a %s-rule group" % ("large"))] += 1
                if j and j.reason == "inner-access":
                    alt = oracle.judge(oracle.State(snap, ["inner-access-needs-member-local"]), e, d,
                                       oracle.norm_packet(dict(p)))
                    if alt.reason != "inner-access":
                        cov[(provider, "inner-access at a public local address")] += 1
                if str(p["src"] if d == "egress" else p["dst"]) in g.pub:
                    cov[(provider, "judged at a public address")] += 1
                if agree(j, o):
                    agreed += 1
                    continue
                cls = features(st, snap, e, d, p, j, o)
                c = classes.setdefault(cls, {"n": 0, "examples": []})
                c["n"] += 1
                if len(c["examples"]) < 3:
                    c["examples"].append((snap, e, d, p, j, o, kind, base))
        scen += 1

    pct = 100.0 * agreed / total if total else 100.0
    print("judgements: %d (pcap %d, flow log %d) in %d random snapshots, seed %d"
          % (total, by_path["pcap"], by_path["flowlog"], scen, args.seed))
    print("agree: %d = %.2f%%  (threshold %.2f%%)" % (agreed, pct, args.threshold))
    print("coverage (oracle side): " + ", ".join("%s %s: %d" % (k[0], k[1], v) for k, v in sorted(cov.items())))
    roots = collections.OrderedDict()
    for cls, c in sorted(classes.items(), key=lambda kv: -kv[1]["n"]):
        roots.setdefault(cls[0], []).append((cls, c))
    print("disagreements: %d in %d classes (%d sub-classes)" % (total - agreed, len(roots), len(classes)))
    for root, subs in sorted(roots.items(), key=lambda kv: -sum(c["n"] for _, c in kv[1])):
        n = sum(c["n"] for _, c in subs)
        print("\n== class %s: %d judgements (%.2f%%)" % (root, n, 100.0 * n / total))
        for cls, c in subs:
            print("   %5d x %s" % (c["n"], " ".join(cls[1:])))
        shown = 0
        for cls, c in subs:
            for snap, e, d, p, j, o, kind, base in c["examples"][:1]:
                if shown >= args.show:
                    break
                shown += 1
                print("   example at %s %s (%s, %s): %s" % (e, d, kind, os.path.basename(base), pkt_text(p)))
                print("   oracle: %s | sgsim: %s" % (expect_text(j), sgsim_text(o)))
                if not args.no_minimize:
                    jj, oo = j, o
                    m = minimize(snap, e, d, p, args.sgsim, tmp,
                                 lambda j2, o2: (not agree(j2, o2)) and
                                 (j2 and j2.verdict, o2 and o2["verdict"]) == (jj and jj.verdict, oo and oo["verdict"]))
                    print("   minimal state: " + json.dumps({k: m[k] for k in ("groups", "enis", "prefix_lists", "rules")
                                                             if m.get(k)}))
    return 0 if pct >= args.threshold else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print("harness error: %s" % e, file=sys.stderr)
        sys.exit(2)
