#!/usr/bin/env python3
"""Issue #21's load target: one AWS security group with N members (default 64,000), which
references itself on 443 and is referenced by a client group, as describe-* exports, and the
revoke of its self-reference.

Usage: python3 big_group.py OUT [N]   (writes OUT/state/{sg,enis,vpcs}.json and OUT/revoke.txt)
Then:  sgsim rules --state OUT/state; sgsim whatif --state OUT/state --request @OUT/revoke.txt
"""
import json, os, sys

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 64000
os.makedirs(out + "/state", exist_ok=True)
A, V = "111122223333", "vpc-0aaaaaaaaaaaaaaa1"
TARGET, CLIENT = "sg-0target000000001", "sg-0client000000001"


def perm(port, pairs=(), cidr=None):
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": cidr}] if cidr else [], "Ipv6Ranges": [], "PrefixListIds": [],
            "UserIdGroupPairs": [{"GroupId": g, "UserId": A} for g in pairs]}


egress = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
           "PrefixListIds": [], "UserIdGroupPairs": []}]
groups = [
    {"GroupId": TARGET, "GroupName": "target", "Description": "t", "OwnerId": A, "VpcId": V,
     "IpPermissions": [perm(443, [TARGET]), perm(22, (), "10.0.0.0/8")], "IpPermissionsEgress": egress},
    {"GroupId": CLIENT, "GroupName": "client", "Description": "c", "OwnerId": A, "VpcId": V,
     "IpPermissions": [perm(8080, [TARGET])], "IpPermissionsEgress": egress},
]


def eni(id, ip, group, name):
    return {"NetworkInterfaceId": id, "VpcId": V, "PrivateIpAddress": ip,
            "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": ip}], "Ipv6Addresses": [],
            "Groups": [{"GroupName": name, "GroupId": group}], "Status": "in-use"}


enis = [eni("eni-%017x" % i, "10.%d.%d.%d" % (1 + i // 62500, (i // 250) % 250, i % 250 + 1), TARGET, "target")
        for i in range(n)]
enis.append(eni("eni-client", "10.250.0.1", CLIENT, "client"))
json.dump({"SecurityGroups": groups}, open(out + "/state/sg.json", "w"))
json.dump({"NetworkInterfaces": enis}, open(out + "/state/enis.json", "w"))
json.dump({"Vpcs": [{"VpcId": V, "CidrBlock": "10.0.0.0/8", "IsDefault": False}]}, open(out + "/state/vpcs.json", "w"))
open(out + "/revoke.txt", "w").write(
    "Action=RevokeSecurityGroupIngress&Version=2016-11-15&GroupId=%s&IpPermissions.1.IpProtocol=tcp"
    "&IpPermissions.1.FromPort=443&IpPermissions.1.ToPort=443&IpPermissions.1.Groups.1.GroupId=%s" % (TARGET, TARGET))
