#!/usr/bin/env python3
"""A real S3 server on 127.0.0.1 for ceso's tests: moto's server with
signature checking on, plus what moto does not model but real S3 does.

  s3server.py PORTFILE CREDFILE [--bucket NAME]

Starts moto 5.2.1 with IAM authentication enforced from the first request
(INITIAL_NO_AUTH_ACTION_COUNT=0): an IAM user with an s3:* policy and its
access key are created inside the server process, never over HTTP, and
written to CREDFILE in ~/.aws/credentials format (profile "ceso-test").
The port goes to PORTFILE once the server accepts connections.

On top of moto:
- the signature is checked against the query exactly as the client sent it
  (moto 5.2.1 rebuilds it from werkzeug's decoded URL, so a correctly
  signed `prefix=bk%2F` fails; boto3's own requests fail the same way);
- a request whose X-Amz-Date is more than 15 minutes away from the server's
  clock is refused with 403 RequestTimeTooSkewed, as AWS does;
- faults for the tests, set with `POST /__fault` (JSON, not signed, handled
  here and never passed to moto): {"status": 503, "delay": 2.5,
  "match": "partNumber=", "after": 1, "count": 3, "clock_offset": 3600}: requests whose
  method+path+query contain `match`, after the first `after` such
  requests, wait `delay` seconds and/or are answered `status` (count: how
  many times; absent: forever); body_mib answers 200 with that many MiB of
  junk instead; clock_offset moves the server's clock (in
  seconds) for the skew check. `POST /__fault` with {} clears them.
  `GET /__stats` gives request counts per method.
"""
import datetime
import json
import os
import sys
import threading
import time

os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
os.environ.setdefault("MOTO_PORT", "0")

from moto.core import responses as moto_responses  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)
from moto.s3.models import s3_backends  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

ACCOUNT = "123456789012"
REGION = "us-east-1"

# The signature check with the query as sent.
_orig_setup = moto_responses.BaseResponse.setup_class


def _setup_class(self, request, full_url, headers, use_raw_body=False):
    _orig_setup(self, request, full_url, headers, use_raw_body)
    environ = getattr(request, "environ", None)
    if environ is not None:
        raw = environ.get("QUERY_STRING", "")
        base = self.uri.split("?", 1)[0]
        self.uri = base + ("?" + raw if raw else "")


moto_responses.BaseResponse.setup_class = _setup_class

_lock = threading.Lock()
_fault = {}
_seen = {"matched": 0}
_stats = {}


def _xml_error(start_response, status, code, message):
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
        "<Message>%s</Message></Error>" % (code, message)
    ).encode()
    reasons = {403: "Forbidden", 500: "Internal Server Error", 503: "Service Unavailable"}
    start_response(
        "%d %s" % (status, reasons.get(status, "Error")),
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]


def wrap(app):
    def wrapped(environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if path == "/__fault":
            n = int(environ.get("CONTENT_LENGTH") or 0)
            spec = json.loads(environ["wsgi.input"].read(n) or b"{}")
            with _lock:
                _fault.clear()
                _fault.update(spec)
                _seen["matched"] = 0
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b"{}"]
        if path == "/__stats":
            with _lock:
                body = json.dumps(_stats).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        with _lock:
            _stats[method] = _stats.get(method, 0) + 1
            fault = dict(_fault)
            hit = False
            if fault and ("status" in fault or "delay" in fault or "body_mib" in fault) and fault.get("match", "") in "%s %s?%s" % (method, path, query):
                _seen["matched"] += 1
                n = _seen["matched"] - fault.get("after", 0)
                hit = n > 0 and ("count" not in fault or n <= fault["count"])
        if hit and fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if hit and fault.get("body_mib"):
            # A hostile server: an endless-looking 200 answer.
            size = int(float(fault["body_mib"]) * (1 << 20))
            start_response("200 OK", [("Content-Type", "application/xml"),
                                      ("Content-Length", str(size))])
            return (b"<" * (1 << 20) for _ in range(size >> 20))
        if hit and fault.get("status"):
            # Drain the body first, as a server does before answering.
            n = int(environ.get("CONTENT_LENGTH") or 0)
            while n > 0:
                chunk = environ["wsgi.input"].read(min(n, 1 << 20))
                if not chunk:
                    break
                n -= len(chunk)
            return _xml_error(start_response, int(fault["status"]), "SlowDown",
                              "Please reduce your request rate.")
        amz_date = environ.get("HTTP_X_AMZ_DATE")
        if environ.get("HTTP_AUTHORIZATION") and amz_date:
            try:
                sent = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                    tzinfo=datetime.timezone.utc)
            except ValueError:
                return _xml_error(start_response, 403, "AccessDenied", "bad X-Amz-Date")
            now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                seconds=float(fault.get("clock_offset", 0)))
            if abs((now - sent).total_seconds()) > 15 * 60:
                return _xml_error(
                    start_response, 403, "RequestTimeTooSkewed",
                    "The difference between the request time and the current time is too large.")
        return app(environ, start_response)

    return wrapped


def main():
    portfile, credfile = sys.argv[1], sys.argv[2]
    bucket = "ceso-test"
    if "--bucket" in sys.argv:
        bucket = sys.argv[sys.argv.index("--bucket") + 1]
    iam = iam_backends[ACCOUNT]["global"] if "global" in iam_backends[ACCOUNT] else \
        iam_backends[ACCOUNT]["aws"]
    iam.create_user(REGION, user_name="ceso", path="/")
    iam.put_user_policy("ceso", "s3all", json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key("ceso")
    s3_backends[ACCOUNT]["aws"].create_bucket(bucket, REGION)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, wrap(app), threaded=True)
    port = server.socket.getsockname()[1]
    with open(credfile + ".tmp", "w") as f:
        f.write("[ceso-test]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                % (key.access_key_id, key.secret_access_key))
    os.rename(credfile + ".tmp", credfile)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
