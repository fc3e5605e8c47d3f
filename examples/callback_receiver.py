#!/usr/bin/env python3
"""Receive jobgate callbacks, check each signature, print one line per callback.

Standard library only: copy it anywhere. The callback secret is yours, from
`GET /api/v1/me` (found with $JOBGATE_SERVER and $JOBGATE_TOKEN), or --secret.

    python3 examples/callback_receiver.py --port 9000
    callback 1 for 01JD...: QUEUED (signature ok)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    stamp = headers.get("X-Jobgate-Timestamp", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > tolerance_s:
        return False  # too old (or too new): a replay, or a wrong clock
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), headers.get("X-Jobgate-Signature", ""))


def my_secret() -> str:
    server, token = os.environ.get("JOBGATE_SERVER"), os.environ.get("JOBGATE_TOKEN")
    if not (server and token):
        sys.exit("give --secret, or set JOBGATE_SERVER and JOBGATE_TOKEN")
    if not server.startswith(("http://", "https://")):
        sys.exit(f"JOBGATE_SERVER must be an http(s) URL, not {server!r}")
    url = server.rstrip("/") + "/api/v1/me"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - checked above
        secret: str = json.load(response)["callback_secret"]
        return secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--secret", help="default: yours, from GET /api/v1/me")
    args = parser.parse_args()
    secret = args.secret or my_secret()
    seen: set[str] = set()  # delivery is at least once: drop repeats by event id

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not verify(secret, dict(self.headers.items()), body):
                print("BAD signature: refused", flush=True)
                self.send_response(401)
            else:
                msg = json.loads(body)
                if msg["event_id"] not in seen:
                    seen.add(msg["event_id"])
                    print(
                        f"callback {msg['sequence']} for {msg['job']['id']}: "
                        f"{msg['event']['type']} (signature ok)",
                        flush=True,
                    )
                self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *log_args: object) -> None:
            pass  # one line per callback is enough

    print(f"listening on http://{args.host}:{args.port}/", flush=True)
    HTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
