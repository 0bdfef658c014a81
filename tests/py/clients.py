#!/usr/bin/env python3
"""Real clients against a real `sgsim serve` on 127.0.0.1.

Drives the server with botocore-signed requests and boto3 (AWS), the `aws` CLI, Alibaba's
current SDK (alibabacloud_tea_openapi / alibabacloud_ecs20140526, ACS3 signatures) and the
legacy aliyun-python-sdk-core (RPC signatures). The server runs with --credentials, so every
signature is verified.

Each revoke case comes from the Rust suites' data (tests/data/aws/cases, tests/data/aliyun/
cases.txt). A case passes when
  1. the answer (HTTP status and body) equals what `sgsim revoke` prints for the request as
     the server received it (its parameters from /sgsim/changes),
  2. describes through the client list exactly the rules `sgsim revoke --out` leaves, and
  3. /sgsim/report.json's revoked_rules name exactly the rules that revoke removed.
Prints one line per failed case and, last, a JSON summary line; exits non-zero when a
non-case check fails (DryRun, paginator, aws CLI, bad signature).

Usage: python tests/py/clients.py --sgsim target/debug/sgsim
"""

import argparse
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.httpsession
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_util import models as util_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ecs20140526 import models as ecs_models
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkcore.acs_exception.exceptions import ServerException, ClientException

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWS_STATE = os.path.join(ROOT, "tests/data/aws/state")
ALI_STATE = os.path.join(ROOT, "tests/data/aliyun/export")
KEY, SECRET = "AKIDSGSIMTEST", "sgsim/test+secret"
REGION = "us-east-1"


class Server:
    def __init__(self, sgsim, creds):
        self.proc = subprocess.Popen(
            [sgsim, "serve", "--state", AWS_STATE, "--state", ALI_STATE,
             "--bind", "127.0.0.1:0", "--credentials", creds],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            m = re.search(r"listening on http://([0-9.:]+)/", line)
            if m:
                self.addr = m.group(1)
                break
        else:
            raise SystemExit("sgsim serve did not start")
        self.url = f"http://{self.addr}/"
        # Keep draining the request log.
        import threading
        self.log = []
        threading.Thread(target=lambda: [self.log.append(l) for l in self.proc.stderr], daemon=True).start()

    def get(self, path):
        with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path):
        req = urllib.request.Request(self.url.rstrip("/") + path, data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=10)


def no_request_id(text):
    """The body with its request ID blanked: the server gives every answer its own,
    `sgsim revoke` derives one from the request."""
    return re.sub(r"<(requestId|RequestID|RequestId)>[^<]*</\1>", r"<\1></\1>", text)


def sgsim_revoke(sgsim, params, tmp):
    """`sgsim revoke` on the parameters as the server received them: status, body, the
    state after (None on an API error)."""
    req = os.path.join(tmp, "req.txt")
    with open(req, "w") as f:
        if len(params) == 1 and params[0][0] == "(json)":
            f.write(params[0][1])
        else:
            f.write(urllib.parse.urlencode([tuple(x) for x in params]))
    out = os.path.join(tmp, "out.json")
    if os.path.exists(out):
        os.remove(out)
    p = subprocess.run([sgsim, "revoke", "--state", AWS_STATE, "--state", ALI_STATE,
                        "--request", "@" + req, "--out", out],
                       capture_output=True, text=True)
    if p.returncode == 2:
        return None
    state = json.load(open(out)) if p.returncode == 0 else None
    return p.returncode, p.stdout.rstrip("\n"), state


def rules_of(state, provider):
    groups = {g["id"]: g["provider"] for g in state["groups"]}
    return [r["id"] for r in state["rules"] if groups.get(r["group"]) == provider]


# ------------------------------------------------------------------ cases from the suites

def aws_cases():
    out = []
    d = os.path.join(ROOT, "tests/data/aws/cases")
    for name in sorted(os.listdir(d)):
        text = open(os.path.join(d, name)).read()
        if re.search(r"^config:", text, re.M):
            continue
        m = re.search(r"request:\n(.*?)\nexpect:", text, re.S)
        if not m:
            continue
        req = m.group(1).strip()
        if req.startswith("{"):
            out.append((name, "json", json.loads(req)))
        else:
            if "://" in req.split("\n")[0]:
                req = req.split("?", 1)[1] if "?" in req else ""
            q = "".join(l.strip() for l in req.splitlines()).lstrip("?")
            out.append((name, "query", urllib.parse.parse_qsl(q, keep_blank_values=True)))
    return out


def flatten_ali(obj):
    params = []
    for k, v in obj.items():
        if k == "Permissions":
            items = v if isinstance(v, list) else [v]
            for i, item in enumerate(items, 1):
                for fk, fv in item.items():
                    params.append((f"Permissions.{i}.{fk}", str(fv)))
        elif k == "SecurityGroupRuleId":
            items = v if isinstance(v, list) else [v]
            for i, item in enumerate(items, 1):
                params.append((f"SecurityGroupRuleId.{i}", str(item)))
        elif v is not None:
            params.append((k, v if isinstance(v, str) else json.dumps(v)))
    return params


def ali_cases():
    text = open(os.path.join(ROOT, "tests/data/aliyun/cases.txt")).read()
    out = []
    for block in text.split("\n[")[1:]:
        name = block.split("]")[0]
        lines = block.splitlines()
        if any(l.startswith(("extra", "owner")) for l in lines):
            continue
        if any(l.strip() == "expect = unusable" for l in lines):
            continue
        for line in lines:
            if " = " not in line:
                continue
            k, v = [s.strip() for s in line.split(" = ", 1)]
            if k == "request":
                req = open(os.path.join(ROOT, "tests/data/aliyun", v[1:])).read() if v.startswith("@") else v
                req = req.strip()
                if req.startswith("{"):
                    try:
                        params = flatten_ali(json.loads(req))
                    except ValueError:
                        continue
                else:
                    if "://" in req.split("\n")[0]:
                        req = req.split("?", 1)[1] if "?" in req else ""
                    q = "".join(l.strip() for l in req.splitlines()).lstrip("?")
                    params = urllib.parse.parse_qsl(q, keep_blank_values=True)
            elif k in ("ingress", "egress"):
                g, q = [s.strip() for s in v.split("|", 1)]
                action = "RevokeSecurityGroup" if k == "ingress" else "RevokeSecurityGroupEgress"
                params = [("Action", action), ("RegionId", "cn-hangzhou"), ("SecurityGroupId", g)]
                params += urllib.parse.parse_qsl(q, keep_blank_values=True)
            else:
                continue
            # Placeholders and signature leftovers are the document's, not a client's.
            params = [(a, b) for a, b in params
                      if not (a.startswith("<") and a.endswith(">"))
                      and a not in ("Signature", "SignatureNonce", "Timestamp", "AccessKeyId",
                                    "SignatureMethod", "SignatureVersion", "Format", "Version")]
            if not any(a == "Action" for a, _ in params):
                continue
            out.append((name, params))
    return out


# ------------------------------------------------------------------ AWS clients

def boto_client(url):
    return boto3.client("ec2", endpoint_url=url, region_name=REGION,
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                        config=BotoConfig(retries={"max_attempts": 1}))


def send_signed(url, params):
    """A form POST as botocore serializes it, signed by botocore's SigV4."""
    body = urllib.parse.urlencode(params)
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=url, data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    creds = botocore.credentials.Credentials(KEY, SECRET)
    botocore.auth.SigV4Auth(creds, "ec2", REGION).add_auth(req)
    resp = botocore.httpsession.URLLib3Session().send(req.prepare())
    return resp.status_code, resp.text


def aws_describe_ids(client):
    pages = client.get_paginator("describe_security_group_rules").paginate(
        PaginationConfig={"PageSize": 5})
    return [r["SecurityGroupRuleId"] for p in pages for r in p["SecurityGroupRules"]]


JSON_METHOD = {"RevokeSecurityGroupIngress": "revoke_security_group_ingress",
               "RevokeSecurityGroupEgress": "revoke_security_group_egress"}


def run_aws_case(server, client, sgsim, tmp, name, kind, req):
    server.post("/sgsim/reset")
    if kind == "json":
        args = dict(req)
        action = args.pop("Action")
        try:
            getattr(client, JSON_METHOD[action])(**args)
        except ClientError:
            pass
        except Exception as e:  # botocore refuses params its model lacks
            return None, f"boto3 refused the request: {type(e).__name__}"
        status, body = None, None
    else:
        status, body = send_signed(server.url, req)
    changes = server.get("/sgsim/changes")["changes"]
    if len(changes) != 1:
        return False, f"{len(changes)} changes logged"
    sent = changes[0]["request"]
    if body is None:
        status, body = changes[0]["status"], changes[0]["response"]
    want = sgsim_revoke(sgsim, sent, tmp)
    if want is None:
        return None, "not a request for sgsim revoke"
    code, want_body, after = want
    if no_request_id(body.rstrip("\n")) != no_request_id(want_body):
        return False, f"body differs:\n{body}\n--- sgsim revoke:\n{want_body}"
    if (status >= 400) != (code == 1):
        return False, f"status {status} but sgsim revoke exit {code}"
    base = server.get("/sgsim/state.json")  # after the revoke
    expected_rules = rules_of(after, "aws") if after else None
    got = aws_describe_ids(client)
    if expected_rules is not None and got != expected_rules:
        return False, "describe_security_group_rules differs from sgsim revoke --out"
    if expected_rules is None and got != rules_of(base, "aws"):
        return False, "describe after an error differs from the served state"
    report = server.get("/sgsim/report.json")
    revoked = sorted(r["rule_id"] for r in report["revoked_rules"])
    want_revoked = sorted(changes[0]["revoked"])
    if after is not None:
        baseline_ids = set(rules_of(BASELINE, "aws"))
        want_revoked = sorted(baseline_ids - set(rules_of(after, "aws")))
    if revoked != want_revoked:
        return False, f"report.json revoked {revoked}, expected {want_revoked}"
    return True, ""


# ------------------------------------------------------------------ Alibaba clients

def ali_new(addr):
    config = open_api_models.Config(access_key_id=KEY, access_key_secret=SECRET,
                                    endpoint=addr, protocol="http", region_id="cn-hangzhou")
    return OpenApiClient(config), EcsClient(config)


def send_new(client, params):
    action = dict(params)["Action"]
    query = {}
    for k, v in params:
        if k != "Action" and k not in query:
            query[k] = v
    api = open_api_models.Params(action=action, version="2014-05-26", protocol="HTTP",
                                 pathname="/", method="POST", auth_type="AK", style="RPC",
                                 req_body_type="formData", body_type="json")
    request = open_api_models.OpenApiRequest(query=query)
    try:
        client.call_api(api, request, util_models.RuntimeOptions(autoretry=False, max_attempts=0))
    except Exception:
        pass


def send_legacy(client, addr, params):
    req = CommonRequest()
    req.set_domain(addr)
    req.set_protocol_type("http")
    req.set_version("2014-05-26")
    req.set_method("POST")
    seen = set()
    for k, v in params:
        if k == "Action":
            req.set_action_name(v)
        elif k not in seen:
            seen.add(k)
            req.add_query_param(k, v)
    try:
        client.do_action_with_exception(req)
    except (ServerException, ClientException):
        pass


def ali_describe_ids(ecs, group, direction):
    r = ecs.describe_security_group_attribute_with_options(
        ecs_models.DescribeSecurityGroupAttributeRequest(
            region_id="cn-hangzhou", security_group_id=group, direction=direction,
            nic_type="intranet"),
        util_models.RuntimeOptions())
    return [p.security_group_rule_id for p in r.body.permissions.permission]


def run_ali_case(server, sdk, sgsim, tmp, name, params):
    server.post("/sgsim/reset")
    sdk(params)
    changes = server.get("/sgsim/changes")["changes"]
    if len(changes) != 1:
        return False, f"{len(changes)} changes logged"
    sent, status, body = changes[0]["request"], changes[0]["status"], changes[0]["response"]
    want = sgsim_revoke(sgsim, sent, tmp)
    if want is None:
        return None, "not a request for sgsim revoke"
    code, want_body, after = want
    if dict(json.loads(body), RequestId="") != dict(json.loads(want_body), RequestId=""):
        return False, f"body differs:\n{body}\n--- sgsim revoke:\n{want_body}"
    if (status >= 400) != (code == 1):
        return False, f"status {status} but sgsim revoke exit {code}"
    state = after if after is not None else server.get("/sgsim/state.json")
    group = dict(params).get("SecurityGroupId", "")
    served_groups = {g["id"] for g in state["groups"] if g["provider"] == "aliyun"}
    if group in served_groups:
        direction = "egress" if dict(params)["Action"].endswith("Egress") else "ingress"
        want_ids = [r["id"] for r in state["rules"] if r["group"] == group
                    and r["direction"] == direction
                    and r.get("attrs", {}).get("NicType", "intranet") == "intranet"]
        got = ali_describe_ids(ALI_ECS, group, direction)
        if got != want_ids:
            return False, f"DescribeSecurityGroupAttribute lists {got}, expected {want_ids}"
    report = server.get("/sgsim/report.json")
    revoked = sorted(r["rule_id"] for r in report["revoked_rules"])
    want_revoked = sorted(set(rules_of(BASELINE, "aliyun")) - set(rules_of(after, "aliyun"))) if after else []
    if revoked != want_revoked:
        return False, f"report.json revoked {revoked}, expected {want_revoked}"
    return True, ""


# ------------------------------------------------------------------ checks beyond the cases

def extra_checks(server, client, aws_bin):
    failures = []
    # DryRun through boto3.
    rules = server.get("/sgsim/state.json")
    server.post("/sgsim/reset")
    groups = {g["id"]: g for g in rules["groups"]}
    aws_rule = next(r for r in rules["rules"] if groups[r["group"]]["provider"] == "aws"
                    and r["direction"] == "ingress" and r["id"].startswith("sgr-0"))
    try:
        client.revoke_security_group_ingress(GroupId=aws_rule["group"], SecurityGroupRuleIds=[aws_rule["id"]], DryRun=True)
        failures.append("DryRun succeeded")
    except ClientError as e:
        if e.response["Error"]["Code"] != "DryRunOperation" or e.response["ResponseMetadata"]["HTTPStatusCode"] != 412:
            failures.append(f"DryRun answered {e.response['Error']}")
    # A revoke by rule ID through boto3, then describe_security_groups shows it gone.
    r = client.revoke_security_group_ingress(GroupId=aws_rule["group"], SecurityGroupRuleIds=[aws_rule["id"]])
    if not r.get("Return"):
        failures.append(f"revoke by ID: {r}")
    ids = aws_describe_ids(client)
    if aws_rule["id"] in ids:
        failures.append("revoked rule still described")
    sg = client.describe_security_groups(GroupIds=[aws_rule["group"]])["SecurityGroups"][0]
    if sg["GroupId"] != aws_rule["group"]:
        failures.append("describe_security_groups")
    report = server.get("/sgsim/report.json")
    if [x["rule_id"] for x in report["revoked_rules"]] != [aws_rule["id"]]:
        failures.append(f"report after boto3 revoke: {report['revoked_rules']}")
    # Errors boto3 raises from the served envelope.
    try:
        client.describe_security_groups(GroupIds=["sg-0fffffffffffffff0"])
        failures.append("unknown group described")
    except ClientError as e:
        if e.response["Error"]["Code"] != "InvalidGroup.NotFound":
            failures.append(f"unknown group: {e.response['Error']}")
    # The aws CLI.
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")
    base = [aws_bin, "ec2", "--endpoint-url", server.url, "--output", "json"]
    p = subprocess.run(base + ["describe-security-groups"], capture_output=True, text=True, env=env)
    if p.returncode != 0 or "SecurityGroups" not in p.stdout:
        failures.append(f"aws describe-security-groups: {p.returncode} {p.stderr[-300:]}")
    other = next(x for x in rules["rules"] if groups[x["group"]]["provider"] == "aws"
                 and x["direction"] == "egress")
    p = subprocess.run(base + ["revoke-security-group-egress", "--group-id", other["group"],
                               "--security-group-rule-ids", other["id"]],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0 or '"Return": true' not in p.stdout:
        failures.append(f"aws revoke-security-group-egress: {p.returncode} {p.stdout} {p.stderr[-300:]}")
    p = subprocess.run(base + ["revoke-security-group-egress", "--group-id", other["group"],
                               "--security-group-rule-ids", other["id"]],
                       capture_output=True, text=True, env=env)
    if p.returncode == 0 or "InvalidSecurityGroupRuleId.NotFound" not in p.stderr:
        failures.append(f"aws CLI second revoke: {p.returncode} {p.stderr[-300:]}")
    p = subprocess.run(base + ["describe-security-group-rules", "--max-items", "7"], capture_output=True, text=True, env=env)
    if p.returncode != 0 or len(json.loads(p.stdout)["SecurityGroupRules"]) != 7:
        failures.append(f"aws describe-security-group-rules --max-items: {p.stderr[-300:]}")
    report = server.get("/sgsim/report.json")
    if sorted(x["rule_id"] for x in report["revoked_rules"]) != sorted([aws_rule["id"], other["id"]]):
        failures.append(f"report after the aws CLI: {[x['rule_id'] for x in report['revoked_rules']]}")
    # A wrong secret gets the provider's auth error.
    bad = boto3.client("ec2", endpoint_url=server.url, region_name=REGION,
                       aws_access_key_id=KEY, aws_secret_access_key="wrong")
    try:
        bad.describe_vpcs()
        failures.append("a wrong secret was accepted")
    except ClientError as e:
        if e.response["Error"]["Code"] != "SignatureDoesNotMatch":
            failures.append(f"wrong secret: {e.response['Error']}")
    # Alibaba: the typed client, DescribeSecurityGroups pages, a wrong key.
    r = ALI_ECS.describe_security_groups_with_options(
        ecs_models.DescribeSecurityGroupsRequest(region_id="cn-hangzhou", page_size=2),
        util_models.RuntimeOptions())
    if len(r.body.security_groups.security_group) != 2 or r.body.total_count < 3:
        failures.append("DescribeSecurityGroups paging")
    badcfg = open_api_models.Config(access_key_id="NOPE", access_key_secret="x",
                                    endpoint=server.addr, protocol="http", region_id="cn-hangzhou")
    try:
        EcsClient(badcfg).describe_security_groups_with_options(
            ecs_models.DescribeSecurityGroupsRequest(region_id="cn-hangzhou"), util_models.RuntimeOptions())
        failures.append("an unknown Alibaba key was accepted")
    except Exception as e:
        if "InvalidAccessKeyId.NotFound" not in str(e):
            failures.append(f"unknown Alibaba key: {e}")
    for label, send in [
        ("current SDK", lambda: EcsClient(open_api_models.Config(
            access_key_id=KEY, access_key_secret="wrong", endpoint=server.addr, protocol="http",
            region_id="cn-hangzhou")).describe_security_groups_with_options(
                ecs_models.DescribeSecurityGroupsRequest(region_id="cn-hangzhou"),
                util_models.RuntimeOptions())),
        ("legacy SDK", lambda: AcsClient(KEY, "wrong", "cn-hangzhou").do_action_with_exception(
            legacy_request(server.addr, "DescribeSecurityGroups", {"RegionId": "cn-hangzhou"}))),
    ]:
        try:
            send()
            failures.append(f"{label}: a wrong secret was accepted")
        except Exception as e:
            # The legacy SDK reads the server's string to sign back from the message and,
            # when it equals its own, reports InvalidAccessKeySecret (as against ECS).
            if "SignatureDoesNotMatch" not in str(e) and "InvalidAccessKeySecret" not in str(e):
                failures.append(f"{label} wrong secret: {e}")
    # Describes are faithful: their output, saved as the CLI prints it, imports back into
    # the same rules (`sgsim rules`), for both clouds.
    server.post("/sgsim/reset")
    failures += round_trip(server, client)
    # A presigned (SigV4 query) GET is verified too.
    aws_req = botocore.awsrequest.AWSRequest(
        method="GET", url=server.url + "?Action=DescribeVpcs&Version=2016-11-15")
    botocore.auth.SigV4QueryAuth(botocore.credentials.Credentials(KEY, SECRET), "ec2", REGION, expires=300).add_auth(aws_req)
    resp = botocore.httpsession.URLLib3Session().send(aws_req.prepare())
    if resp.status_code != 200 or "vpcSet" not in resp.text:
        failures.append(f"presigned GET: {resp.status_code} {resp.text[:300]}")
    # The other EC2 describes boto3 parses.
    try:
        enis = client.describe_network_interfaces()["NetworkInterfaces"]
        vpcs = client.describe_vpcs()["Vpcs"]
        pls = client.describe_managed_prefix_lists()["PrefixLists"]
        entries = client.get_managed_prefix_list_entries(PrefixListId=pls[0]["PrefixListId"])["Entries"]
        if not (enis and vpcs and pls and entries):
            failures.append("an EC2 describe came back empty")
    except Exception as e:
        failures.append(f"EC2 describes: {e}")
    try:
        r = ALI_ECS.describe_network_interfaces_with_options(
            ecs_models.DescribeNetworkInterfacesRequest(region_id="cn-hangzhou"),
            util_models.RuntimeOptions())
        if not r.body.network_interface_sets.network_interface_set:
            failures.append("DescribeNetworkInterfaces came back empty")
    except Exception as e:
        failures.append(f"ECS DescribeNetworkInterfaces: {e}")
    # The aws CLI's --cli-input-json file: the server and `sgsim revoke --action` agree.
    server.post("/sgsim/reset")
    cli_json = os.path.join(os.path.dirname(SGSIM_TMP), "cli-input.json")
    with open(cli_json, "w") as f:
        json.dump({"GroupId": aws_rule["group"], "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.9.9.0/24"}]}]}, f)
    p = subprocess.run(base + ["revoke-security-group-ingress", "--cli-input-json", "file://" + cli_json],
                       capture_output=True, text=True, env=env)
    q = subprocess.run([SGSIM, "revoke", "--state", AWS_STATE, "--state", ALI_STATE,
                        "--action", "RevokeSecurityGroupIngress", "--request", "@" + cli_json],
                       capture_output=True, text=True)
    m = re.search(r"<Code>(.*?)</Code>", q.stdout)
    served = server.get("/sgsim/changes")["changes"]
    if not m or (m.group(1) not in p.stderr) or served[-1]["error"] != m.group(1):
        failures.append(f"--cli-input-json: aws CLI {p.stderr[-200:]!r}, sgsim revoke {q.stdout[-200:]!r}")
    server.post("/sgsim/reset")
    return failures


def sgsim_rules(paths):
    args = [SGSIM, "rules"]
    for p in paths:
        args += ["--state", p]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-500:])
    return sorted((json.loads(l) for l in p.stdout.splitlines()), key=lambda r: r["rule_id"])


def round_trip(server, client):
    failures = []
    d = tempfile.mkdtemp(prefix="sgsim-rt-")
    atexit.register(shutil.rmtree, d, True)
    aws_dir, ali_dir = os.path.join(d, "aws"), os.path.join(d, "ali")
    os.makedirs(aws_dir)
    os.makedirs(ali_dir)

    def save(dirname, name, value):
        value.pop("ResponseMetadata", None)
        with open(os.path.join(dirname, name), "w") as f:
            json.dump(value, f, default=str)

    save(aws_dir, "sg.json", client.describe_security_groups())
    rules = [r for p in client.get_paginator("describe_security_group_rules").paginate() for r in p["SecurityGroupRules"]]
    save(aws_dir, "rules.json", {"SecurityGroupRules": rules})
    save(aws_dir, "vpcs.json", client.describe_vpcs())
    save(aws_dir, "enis.json", client.describe_network_interfaces())
    for pl in client.describe_managed_prefix_lists()["PrefixLists"]:
        entries = client.get_managed_prefix_list_entries(PrefixListId=pl["PrefixListId"])
        entries["PrefixListId"] = pl["PrefixListId"]
        save(aws_dir, f"entries-{pl['PrefixListId']}.json", entries)
    save(aws_dir, "pls.json", client.describe_managed_prefix_lists())
    runtime = util_models.RuntimeOptions()
    groups = ALI_ECS.describe_security_groups_with_options(
        ecs_models.DescribeSecurityGroupsRequest(region_id="cn-hangzhou", page_size=50), runtime).body.to_map()
    save(ali_dir, "groups.json", groups)
    for g in groups["SecurityGroups"]["SecurityGroup"]:
        for nic in ("intranet", "internet"):
            a = ALI_ECS.describe_security_group_attribute_with_options(
                ecs_models.DescribeSecurityGroupAttributeRequest(
                    region_id="cn-hangzhou", security_group_id=g["SecurityGroupId"], nic_type=nic),
                runtime).body.to_map()
            save(ali_dir, f"dsga-{g['SecurityGroupId']}-{nic}.json", a)
    save(ali_dir, "enis.json", ALI_ECS.describe_network_interfaces_with_options(
        ecs_models.DescribeNetworkInterfacesRequest(region_id="cn-hangzhou", page_size=100), runtime).body.to_map())
    for label, exported, original in [("aws", aws_dir, AWS_STATE), ("aliyun", ali_dir, ALI_STATE)]:
        try:
            got, want = sgsim_rules([exported]), sgsim_rules([original])
        except RuntimeError as e:
            failures.append(f"{label} describes do not import: {e}")
            continue
        if got != want:
            diff = [(a, b) for a, b in zip(got, want) if a != b][:2]
            failures.append(f"{label} describes import as other rules ({len(got)} vs {len(want)}): {diff}")
    return failures


def legacy_request(addr, action, params):
    req = CommonRequest()
    req.set_domain(addr)
    req.set_protocol_type("http")
    req.set_version("2014-05-26")
    req.set_method("POST")
    req.set_action_name(action)
    for k, v in params.items():
        req.add_query_param(k, v)
    return req


def main():
    global BASELINE, ALI_ECS, SGSIM, SGSIM_TMP
    ap = argparse.ArgumentParser()
    ap.add_argument("--sgsim", required=True)
    ap.add_argument("--per-provider", type=int, default=50)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sgsim-py-")
    atexit.register(shutil.rmtree, tmp, True)
    SGSIM, SGSIM_TMP = args.sgsim, os.path.join(tmp, "x")
    creds = os.path.join(tmp, "credentials")
    with open(creds, "w") as f:
        f.write(f"{KEY} {SECRET}\n")
    server = Server(args.sgsim, creds)
    BASELINE = server.get("/sgsim/state.json")
    client = boto_client(server.url)
    new_client, ALI_ECS = ali_new(server.addr)
    legacy = AcsClient(KEY, SECRET, "cn-hangzhou")
    results = []

    def record(provider, name, via, outcome):
        ok, why = outcome
        if ok is None:
            return False
        results.append({"provider": provider, "case": name, "via": via, "ok": ok, "why": why})
        if not ok:
            print(f"FAIL {provider} {via} {name}: {why}", flush=True)
        return True

    n = 0
    for name, kind, req in aws_cases():
        if n >= args.per_provider:
            break
        via = "boto3" if kind == "json" else "botocore-signed"
        if record("aws", name, via, run_aws_case(server, client, args.sgsim, tmp, name, kind, req)):
            n += 1
    n = 0
    for i, (name, params) in enumerate(ali_cases()):
        if n >= args.per_provider:
            break
        if i % 2 == 0:
            via, sdk = "alibabacloud_tea_openapi", lambda p: send_new(new_client, p)
        else:
            via, sdk = "aliyun-python-sdk-core", lambda p: send_legacy(legacy, server.addr, p)
        if record("aliyun", name, via, run_ali_case(server, sdk, args.sgsim, tmp, name, params)):
            n += 1
    aws_bin = os.path.join(os.path.dirname(sys.executable), "aws")
    failures = extra_checks(server, client, aws_bin)
    for f in failures:
        print(f"FAIL check: {f}", flush=True)
    code = server.stop()
    if code != 0:
        failures.append(f"server exit status {code} after SIGTERM")
    passed = sum(r["ok"] for r in results)
    by = {}
    for r in results:
        k = f"{r['provider']}/{r['via']}"
        by.setdefault(k, [0, 0])
        by[k][0] += r["ok"]
        by[k][1] += 1
    summary = {"cases": len(results), "passed": passed,
               "pass_rate": round(passed / max(len(results), 1), 4),
               "by_client": {k: f"{a}/{b}" for k, (a, b) in sorted(by.items())},
               "check_failures": len(failures)}
    print(json.dumps(summary))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
