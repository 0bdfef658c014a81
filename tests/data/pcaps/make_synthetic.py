#!/usr/bin/env python3
"""Writes the synthetic-*.pcap/.pcapng captures next to this script.

They cover what the tcpdump captures lack: Linux cooked SLL2, OpenBSD loopback (108),
DLT_RAW 12 and 14, a big-endian pcapng, and a pcapng with several interfaces of
different link types and timestamp resolutions (µs and ns), IPv4 options and fragments,
and an IPv6 extension-header chain. Run it from anywhere; it is deterministic.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(src, dst, proto, payload, ident=1, frag=0, mf=False, options=b""):
    ihl = (20 + len(options)) // 4
    flags_off = (0x2000 if mf else 0) | (frag // 8)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload), ident,
                    flags_off, 64, proto, 0, bytes(src), bytes(dst)) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ip6(src, dst, nxt, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nxt, 64, bytes(src), bytes(dst)) + payload


def tcp(sp, dp, flags=0x02):
    return struct.pack("!HHIIBBHHH", sp, dp, 1, 0, 0x50, flags, 65535, 0, 0)


def udp(sp, dp, data=b"sgsm"):
    return struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data


def icmp(t, c):
    return struct.pack("!BBHHH", t, c, 0, 1, 1)


A4 = [10, 0, 0, 1]
B4 = [192, 0, 2, 7]
A6 = [0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [1]
B6 = [0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [2]


def packets():
    # IPv4 TCP SYN; IPv4 with options + UDP; ICMP echo; first and non-first fragments;
    # GRE; IPv6 hop-by-hop -> dest-opts -> fragment(first) -> UDP; IPv6 non-first fragment;
    # ICMPv6 echo.
    hbh = bytes([60, 0, 1, 4, 0, 0, 0, 0])
    dst = bytes([44, 0, 1, 4, 0, 0, 0, 0])
    frag_first = struct.pack("!BBHI", 17, 0, 0x0001, 0x1234)
    frag_later = struct.pack("!BBHI", 17, 0, (64 // 8) << 3, 0x1234)
    return [
        ip4(A4, B4, 6, tcp(40000, 22)),
        ip4(A4, B4, 17, udp(5353, 53), options=bytes([1, 1, 1, 0])),
        ip4(B4, A4, 1, icmp(8, 0)),
        ip4(A4, B4, 17, udp(1000, 2000, b"x" * 16), ident=77, mf=True),
        ip4(A4, B4, 17, b"y" * 16, ident=77, frag=24),
        ip4(A4, B4, 47, struct.pack("!HH", 0, 0x0800)),
        ip6(A6, B6, 0, hbh + dst + frag_first + udp(4000, 443)),
        ip6(A6, B6, 44, frag_later + b"z" * 8),
        ip6(B6, A6, 58, icmp(128, 0)),
    ]


def eth(p):
    t = 0x0800 if p[0] >> 4 == 4 else 0x86DD
    return bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]) + struct.pack("!H", t) + p


def sll(p):
    t = 0x0800 if p[0] >> 4 == 4 else 0x86DD
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", t) + p


def sll2(p):
    t = 0x0800 if p[0] >> 4 == 4 else 0x86DD
    return struct.pack("!HHIHBB8s", t, 0, 2, 1, 0, 6, b"\x02\0\0\0\0\x01\0\0") + p


def loop(p):
    fam = 2 if p[0] >> 4 == 4 else 24
    return struct.pack("!I", fam) + p


def pcap(name, linktype, frames, big=False, ns=False):
    e = ">" if big else "<"
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for i, f in enumerate(frames):
        sec, frac = 1700000000 + i, (123456789 if ns else 123456) + i
        out += struct.pack(e + "IIII", sec, frac, len(f), len(f)) + f
    with open(os.path.join(HERE, name), "wb") as fh:
        fh.write(out)


def block(e, btype, body):
    pad = (-len(body)) % 4
    total = 12 + len(body) + pad
    return struct.pack(e + "II", btype, total) + body + b"\0" * pad + struct.pack(e + "I", total)


def opt(e, code, value):
    pad = (-len(value)) % 4
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * pad


def section(e, ifaces, records, simple=()):
    out = block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    for linktype, tsresol in ifaces:
        opts = b""
        if tsresol is not None:
            opts = opt(e, 9, bytes([tsresol])) + opt(e, 0, b"")
        out += block(e, 1, struct.pack(e + "HHI", linktype, 0, 65535) + opts)
    for if_id, ts, frame in records:
        body = struct.pack(e + "IIIII", if_id, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame
        out += block(e, 6, body)
    for frame in simple:
        out += block(e, 3, struct.pack(e + "I", len(frame)) + frame)
    return out


def pcapng(name, sections):
    with open(os.path.join(HERE, name), "wb") as fh:
        for big, ifaces, records, simple in sections:
            fh.write(section(">" if big else "<", ifaces, records, simple))


def main():
    ps = packets()
    pcap("synthetic-sll2.pcap", 276, [sll2(p) for p in ps])
    pcap("synthetic-loop108-be.pcap", 108, [loop(p) for p in ps], big=True)
    pcap("synthetic-dltraw12-ns.pcap", 12, ps, ns=True)
    pcap("synthetic-dltraw14-be-ns.pcap", 14, ps, big=True, ns=True)
    recs = []
    for i, p in enumerate(ps):
        recs.append((0, 1700000000_000000 + i, eth(p)))          # µs interface
        recs.append((1, 1700000000_000000000 + i, p))            # ns interface, raw IP
        recs.append((2, 1700000000_000000 + i, sll(p)))          # µs, SLL
    recs.append((5, 0, ps[0]))                                   # undescribed interface
    # Three interfaces, then a simple packet block (interface 0, Ethernet).
    pcapng("synthetic-multi-if.pcapng",
           [(False, [(1, None), (101, 9), (113, 6)], recs, [eth(ps[2])])])
    # A big-endian section (raw IPv4, ns), then a little-endian one (raw IPv6, µs).
    v4 = [p for p in ps if p[0] >> 4 == 4]
    v6 = [p for p in ps if p[0] >> 4 == 6]
    pcapng("synthetic-be.pcapng", [
        (True, [(228, 9)], [(0, 1700000000_000000000 + i, p) for i, p in enumerate(v4)], ()),
        (False, [(229, 6)], [(0, 1700000000_000000 + i, p) for i, p in enumerate(v6)], ()),
    ])


if __name__ == "__main__":
    main()
