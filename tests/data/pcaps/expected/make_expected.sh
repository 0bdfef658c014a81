#!/bin/sh
# Regenerates expected/<capture>.tsv with tshark (an independent decoder), defragmentation
# off, first occurrence of each field (the outer header for tunnels and ICMP errors).
# The tests read the .tsv files; they never need tshark.
set -e
cd "$(dirname "$0")/.."
for f in *.pcap *.pcapng; do
  tshark -r "$f" -n -o ip.defragment:FALSE -o ipv6.defragment:FALSE -T fields -E header=y \
    -E occurrence=f -E separator=/t \
    -e frame.number -e ip.src -e ip.dst -e ip.proto -e ipv6.src -e ipv6.dst \
    -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport \
    -e icmp.type -e icmp.code -e icmpv6.type -e icmpv6.code \
    > "expected/$f.tsv" 2>/dev/null || rm -f "expected/$f.tsv"
done
