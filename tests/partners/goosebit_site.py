#!/usr/bin/env python3
"""gooseBit (PyPI goosebit==0.2.12), a server of hawkBit's DDI API, as a fleet manager runs it,
for the Clockface update tests. Everything goes through gooseBit's own code: its database
schema, its REST API and its DDI routes; this script only starts it and calls that API.

    goosebit_site.py serve --dir DIR --port PORT [--poll 00:00:10]
        Creates DIR/db.sqlite3 (gooseBit's models), an admin user, and serves on 127.0.0.1:PORT
        until killed. Prints "READY" once it answers.
    goosebit_site.py upload --url URL FILE          -> prints the software id
    goosebit_site.py assign --url URL DEVICE SOFTWARE_ID [--force]
    goosebit_site.py device --url URL DEVICE       -> prints the device as JSON (state, version, log)

The admin's name and password are fixed (a test server on loopback only).
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

USER, PASSWORD = "admin@clockface.test", "clockface-test-password"


def serve(args):
    os.makedirs(args.dir, exist_ok=True)
    os.environ["GOOSEBIT_DB_URI"] = f"sqlite:///{os.path.abspath(args.dir)}/db.sqlite3"
    os.environ["GOOSEBIT_ARTIFACTS_DIR"] = os.path.join(os.path.abspath(args.dir), "artifacts")
    os.environ["GOOSEBIT_PORT"] = str(args.port)
    os.environ["GOOSEBIT_POLL_TIME"] = args.poll
    # A fixed secret key, so that a restarted server accepts the tokens it handed out.
    os.environ.setdefault("GOOSEBIT_SECRET_KEY", '{"kty":"oct","k":"Y2xvY2tmYWNlLXRlc3Qtc2VjcmV0LWtleS0zMmJ5dGVz"}')
    os.chdir(args.dir)
    import asyncio

    from tortoise import Tortoise

    from goosebit.db.config import TORTOISE_CONF

    async def init():
        await Tortoise.init(config=TORTOISE_CONF)
        await Tortoise.generate_schemas(safe=True)
        from goosebit.users import create_initial_user
        from goosebit.settings import PWD_CXT

        await create_initial_user(USER, PWD_CXT.hash(PASSWORD))
        await Tortoise.close_connections()

    asyncio.run(init())
    import uvicorn

    from goosebit import app

    print("READY", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def token(url):
    body = urllib.parse.urlencode({"username": USER, "password": PASSWORD}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/login", data=body), timeout=30) as r:
        return json.load(r)["access_token"]


def call(url, method, path, body=None, content_type="application/json"):
    req = urllib.request.Request(f"{url}{path}", data=body, method=method)
    req.add_header("Authorization", f"Bearer {token(url)}")
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"gooseBit {method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')[:500]}")


def upload(args):
    boundary = uuid.uuid4().hex
    with open(args.file, "rb") as f:
        data = f.read()
    name = os.path.basename(args.file)
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    r = call(args.url, "PUT", "/api/v1/software", body, f"multipart/form-data; boundary={boundary}")
    print(r["id"])


def assign(args):
    body = {"devices": [args.device], "software": str(args.software)}
    if args.force:
        body["force_update"] = True
    call(args.url, "PATCH", "/api/v1/devices", json.dumps(body).encode())
    print("assigned")


def device(args):
    # The list, not GET /api/v1/devices/{id}: that route fails (HTTP 500) once a software
    # is assigned, as it does not load the software's compatibility list.
    found = [d for d in call(args.url, "GET", "/api/v1/devices")["devices"] if d["id"] == args.device]
    if not found:
        sys.exit(f"gooseBit has no device {args.device}")
    d = found[0]
    d["log"] = call(args.url, "GET", f"/api/v1/devices/{args.device}/log").get("log")
    print(json.dumps(d))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--poll", default="00:00:10")
    u = sub.add_parser("upload")
    u.add_argument("--url", required=True)
    u.add_argument("file")
    a = sub.add_parser("assign")
    a.add_argument("--url", required=True)
    a.add_argument("device")
    a.add_argument("software", type=int)
    a.add_argument("--force", action="store_true")
    d = sub.add_parser("device")
    d.add_argument("--url", required=True)
    d.add_argument("device")
    args = ap.parse_args()
    {"serve": serve, "upload": upload, "assign": assign, "device": device}[args.cmd](args)


if __name__ == "__main__":
    main()
