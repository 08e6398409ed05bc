"""Drives pyzk (PyPI, GPL-2.0; used here as a client only) against a kiosk's ZK side.

usage: zk_pull.py HOST PORT COMM_KEY STEP...
Steps run in order on one connection and each adds a key to the JSON printed on stdout:
users, attendance, time, serial, name, platform, mac, firmware, sizes, disable, enable,
clear, free, refresh. A failure to connect prints {"error": ...} and exits 2.
"""

import json
import sys
import time

from zk import ZK


def main():
    host, port, key, *steps = sys.argv[1:]
    zk = ZK(host, port=int(port), timeout=30, password=int(key), ommit_ping=True)
    out = {}
    try:
        conn = zk.connect()
    except Exception as e:  # pyzk raises its own exception types
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(2)
    for step in steps:
        if step == "users":
            out["users"] = [
                {"uid": u.uid, "user_id": u.user_id, "name": u.name,
                 "privilege": u.privilege, "card": u.card}
                for u in conn.get_users()
            ]
        elif step == "attendance":
            t0 = time.monotonic()
            rows = conn.get_attendance()
            out["attendance_seconds"] = time.monotonic() - t0
            out["attendance"] = [
                [a.user_id, a.timestamp.strftime("%Y-%m-%dT%H:%M:%S"), a.punch, a.status, a.uid]
                for a in rows
            ]
        elif step == "time":
            out["time"] = conn.get_time().strftime("%Y-%m-%dT%H:%M:%S")
        elif step == "serial":
            out["serial"] = conn.get_serialnumber()
        elif step == "name":
            out["name"] = conn.get_device_name()
        elif step == "platform":
            out["platform"] = conn.get_platform()
        elif step == "mac":
            out["mac"] = conn.get_mac()
        elif step == "firmware":
            out["firmware"] = conn.get_firmware_version()
        elif step == "sizes":
            conn.read_sizes()
            out["sizes"] = {"users": conn.users, "records": conn.records}
        elif step == "disable":
            out["disable"] = conn.disable_device()
        elif step == "enable":
            out["enable"] = conn.enable_device()
        elif step == "clear":
            out["clear"] = conn.clear_attendance()
        elif step == "free":
            out["free"] = conn.free_data()
        elif step == "refresh":
            out["refresh"] = conn.refresh_data()
        elif step == "settime":
            try:
                from datetime import datetime
                conn.set_time(datetime(2030, 1, 1, 12, 0, 0))
                out["settime"] = True
            except Exception as e:
                out["settime"] = f"{type(e).__name__}: {e}"
        else:
            raise SystemExit(f"unknown step {step}")
    conn.disconnect()
    print(json.dumps(out))


main()
