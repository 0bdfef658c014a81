"""Requests signed by botocore's SigV4, then tampered with or aged, against a running
`sgsim serve --credentials` (tests/it/serve.rs `serve_checks_botocore_signatures`).

Usage: sign_checks.py URL KEY SECRET. Prints one JSON object: case -> [status, error code].
Exits 3 when botocore is missing (the test then skips)."""

import datetime
import hashlib
import json
import re
import sys
from unittest import mock

try:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import botocore.httpsession
except ImportError:
    sys.exit(3)

URL, KEY, SECRET = sys.argv[1:4]
CREDS = botocore.credentials.Credentials(KEY, SECRET)
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
BODY = "Action=DescribeVpcs&Version=2016-11-15"
SWAPPED = "Action=DescribeSecurityGroups&Version=2016-11-15"


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def send(req):
    resp = botocore.httpsession.URLLib3Session().send(req.prepare())
    m = re.search(r"<Code>(.*?)</Code>", resp.text)
    return [resp.status_code, m.group(1) if m else ""]


def signed(body, headers=None, at=None, auth=None):
    req = botocore.awsrequest.AWSRequest(method="POST", url=URL, data=body,
                                         headers=dict(FORM, **(headers or {})))
    auth = auth or botocore.auth.SigV4Auth(CREDS, "ec2", "us-east-1")
    with mock.patch("botocore.auth.get_current_datetime", lambda: at or now()):
        auth.add_auth(req)
    return req


out = {}
out["fresh"] = send(signed(BODY))
req = signed(BODY, {"X-Amz-Content-SHA256": hashlib.sha256(BODY.encode()).hexdigest()})
out["content_sha256_ok"] = send(req)
req.data = SWAPPED
out["body_swapped_under_content_sha256"] = send(req)
req = signed(BODY, {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
out["unsigned_payload_with_body"] = send(req)
req = signed(BODY)
req.data = SWAPPED
out["body_swapped"] = send(req)
out["twenty_minutes_old"] = send(signed(BODY, at=now() - datetime.timedelta(minutes=20)))
out["twenty_minutes_ahead"] = send(signed(BODY, at=now() + datetime.timedelta(minutes=20)))
out["ten_minutes_old"] = send(signed(BODY, at=now() - datetime.timedelta(minutes=10)))
# Presigned GETs: expired after X-Amz-Expires, valid before.
for name, age, expires in [("presigned_expired", 120, 60), ("presigned_valid", 120, 3600)]:
    req = botocore.awsrequest.AWSRequest(method="GET", url=URL + "?" + BODY)
    auth = botocore.auth.SigV4QueryAuth(CREDS, "ec2", "us-east-1", expires=expires)
    with mock.patch("botocore.auth.get_current_datetime",
                    lambda: now() - datetime.timedelta(seconds=age)):
        auth.add_auth(req)
    out[name] = send(req)
print(json.dumps(out))
