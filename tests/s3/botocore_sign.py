#!/usr/bin/env python3
"""Signs one S3 request with botocore (an independent SigV4 signer) for
tests/unit/transport/sigv4_test.cpp, which compares it with ceso's.

stdin: JSON {"method", "endpoint", "path" (decoded), "query": [[k, v], ...]
(decoded), "headers": [[name, value], ...] (without x-amz-date),
"body_hex", "region", "access_key", "secret_key", "token", "amz_date"}.
stdout: the canonical request, a line "----", the Authorization header.
"""
import datetime
import json
import sys
from urllib.parse import quote

import botocore.auth
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

spec = json.load(sys.stdin)
when = datetime.datetime.strptime(spec["amz_date"], "%Y%m%dT%H%M%SZ")
botocore.auth.get_current_datetime = lambda remove_tzinfo=True: when
body = bytes.fromhex(spec["body_hex"])
headers = {name: value for name, value in spec["headers"]}
req = AWSRequest(method=spec["method"], url=spec["endpoint"] + quote(spec["path"], safe="/~"),
                 data=body, headers=headers, params={k: v for k, v in spec["query"]})
creds = Credentials(spec["access_key"], spec["secret_key"], spec["token"] or None)
auth = S3SigV4Auth(creds, "s3", spec["region"])
auth.add_auth(req)
authorization = req.headers["Authorization"]
del req.headers["Authorization"]
print(auth.canonical_request(req))
print("----")
print(authorization)
