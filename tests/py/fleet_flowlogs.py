#!/usr/bin/env python3
"""The fleet flow-log workload of `sgsim bench --flowlogs` (README, "Flow logs"): N AWS VPC flow-log records of a
400-ENI fleet as hourly Hive-partitioned Parquet (AWS's snake_case columns), with the fleet's state and a revoke.

Usage: python3 fleet_flowlogs.py OUT N   (needs the duckdb module; writes OUT/state, OUT/revoke.txt, OUT/parquet)
"""
import json, os, sys, duckdb
out = sys.argv[1]; n = int(sys.argv[2])
os.makedirs(out + "/state", exist_ok=True)
ACCOUNT = "111122223333"
TIERS = [("web", 443), ("app", 8080), ("db", 5432), ("cache", 6379)]
g = lambda t: "sg-0" + t.rjust(16, "0")
eni = lambda t, n: "eni-0%d%015d" % (t, n)
groups = []
for i, (tier, port) in enumerate(TIERS):
    ing = [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}] if i == 0 else [], "Ipv6Ranges": [], "PrefixListIds": [],
            "UserIdGroupPairs": [] if i == 0 else [{"GroupId": g(TIERS[i-1][0]), "UserId": ACCOUNT}]},
           {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.9.0.0/16"}],
            "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]
    groups.append({"GroupId": g(tier), "GroupName": tier, "Description": tier, "OwnerId": ACCOUNT,
                   "VpcId": "vpc-0fleet00000000001", "IpPermissions": ing,
                   "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                                            "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]})
enis = [{"NetworkInterfaceId": eni(t, k), "VpcId": "vpc-0fleet00000000001", "PrivateIpAddress": "10.0.%d.%d" % (t, k + 10),
         "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": "10.0.%d.%d" % (t, k + 10)}], "Ipv6Addresses": [],
         "Groups": [{"GroupName": tier, "GroupId": g(tier)}], "Status": "in-use"}
        for t, (tier, _) in enumerate(TIERS) for k in range(100)]
json.dump({"SecurityGroups": groups}, open(out + "/state/security-groups.json", "w"))
json.dump({"NetworkInterfaces": enis}, open(out + "/state/network-interfaces.json", "w"))
json.dump({"Vpcs": [{"VpcId": "vpc-0fleet00000000001", "CidrBlock": "10.0.0.0/16", "IsDefault": False}]}, open(out + "/state/vpcs.json", "w"))
open(out + "/revoke.txt", "w").write("Action=RevokeSecurityGroupIngress&Version=2016-11-15&GroupId=%s&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=5432&IpPermissions.1.ToPort=5432&IpPermissions.1.IpRanges.1.CidrIp=10.9.0.0/16" % g("db"))
day = 1796515200
duckdb.sql(f"""
COPY (
  SELECT 8 AS version, '{ACCOUNT}' AS account_id,
    'eni-0' || t || lpad(n::VARCHAR, 15, '0') AS interface_id,
    CASE WHEN k < 4 THEN '10.9.' || (i % 4) || '.' || (i % 250 + 1)
         WHEN t = 0 THEN '198.51.100.' || (i % 250 + 1)
         ELSE '10.0.' || (t - 1) || '.' || (i % 100 + 10) END AS srcaddr,
    '10.0.' || t || '.' || (n + 10) AS dstaddr,
    (32768 + i % 28000)::INTEGER AS srcport,
    ([443, 8080, 5432, 6379])[t + 1]::INTEGER AS dstport,
    6::BIGINT AS protocol, (1 + i % 50)::BIGINT AS packets, ((1 + i % 50) * 120)::BIGINT AS bytes,
    ({day} + i * 86400 // {n})::BIGINT AS start, ({day} + i * 86400 // {n} + 60)::BIGINT AS "end",
    CASE WHEN k = 18 THEN 'REJECT' ELSE 'ACCEPT' END AS action, 'OK' AS log_status,
    'ingress' AS flow_direction, CASE WHEN k = 18 AND i % 2 = 0 THEN 'BPA' ELSE '-' END AS reject_reason,
    2026 AS year, 12 AS month, 6 AS day, (i * 24 // {n})::INTEGER AS hour
  FROM (SELECT i, (hash(i) % 4)::BIGINT AS t, (hash(i * 7) % 100)::BIGINT AS n, (hash(i * 13) % 20)::BIGINT AS k FROM range({n}) r(i))
  ORDER BY i
) TO '{out}/parquet' (FORMAT PARQUET, PARTITION_BY (year, month, day, hour), OVERWRITE_OR_IGNORE)
""")
