"""A minimal Django project around django-fingerprint-attendance (PyPI), the ADMS receiver
the kiosk's ADMS push is tested against. Everything lives in one SQLite file.

usage:
  adms_site.py DB serve PORT       migrate, create the API user, serve on 127.0.0.1:PORT
  adms_site.py DB approve PORT SN  approve the device with serial SN through the REST API
  adms_site.py DB punches          print the punch table as JSON (pin, UTC time, state)
  adms_site.py DB command SN TYPE [JSON]  queue a command (info, check, query_attlog, ...)
  adms_site.py DB results          print the device command results as JSON
  adms_site.py DB pull SN HOST PORT  register SN as a pull-mode device at HOST:PORT and import
                                     its attendance log over ZK (the package's own pyzk pull)
"""

import base64
import json
import sys
import urllib.request

import django
from django.conf import settings

DB = sys.argv[1]
ZONE = "Asia/Shanghai"

settings.configure(
    DEBUG=False,
    SECRET_KEY="clockface-test-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    USE_TZ=True,
    TIME_ZONE="UTC",
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "rest_framework",
        "fingerprint_attendance",
    ],
    MIDDLEWARE=[],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB,
                           "OPTIONS": {"timeout": 30}}},
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    LOGGING_CONFIG=None,
    FINGERPRINT_ATTENDANCE={
        "TEMPLATE_ENCRYPTION_KEYS": [base64.urlsafe_b64encode(b"k" * 32).decode()],
        "API_AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
        "DEFAULT_DEVICE_TIMEZONE": ZONE,
        "ADMS_RATE_LIMIT": "100000/m",
        "ADMS_DELAY": 1,
        "ADMS_ERROR_DELAY": 1,
        "PULL_ENABLED": True,
        "PULL_TIMEOUT": 60,
    },
)
django.setup()

from django.urls import include, path  # noqa: E402

urlpatterns = [path("", include("fingerprint_attendance.urls"))]

USER, PASSWORD = "hr", "hr-test-password"


def api(port, method, url, body=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/fingerprint/v1/{url}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def main():
    cmd = sys.argv[2]
    from django.core.management import call_command
    if cmd == "serve":
        call_command("migrate", verbosity=0)
        from django.contrib.auth import get_user_model
        User = get_user_model()
        if not User.objects.filter(username=USER).exists():
            User.objects.create_superuser(USER, "hr@example.com", PASSWORD)
        call_command("runserver", f"127.0.0.1:{sys.argv[3]}", use_reloader=False,
                     use_threading=True, skip_checks=True)
    elif cmd == "approve":
        port, sn = sys.argv[3], sys.argv[4]
        found = api(port, "GET", f"devices/?serial_number={sn}")
        rows = found.get("results", found) if isinstance(found, dict) else found
        if isinstance(rows, dict):
            rows = rows.get("data", rows.get("results", []))
        dev = [d for d in rows if d.get("serial_number") == sn]
        if not dev:
            raise SystemExit(f"no device {sn}: {found}")
        key = dev[0].get("id") or dev[0].get("uuid")
        print(json.dumps(api(port, "POST", f"devices/{key}/approve/", {})))
    elif cmd == "punches":
        from fingerprint_attendance.models import Punch
        print(json.dumps([
            {"pin": p.raw_pin, "utc": p.punched_at.strftime("%Y-%m-%dT%H:%M:%S"),
             "local": p.device_local_time, "state": p.raw_state, "verify": p.verify_mode}
            for p in Punch.objects.order_by("punched_at", "id")
        ]))
    elif cmd == "command":
        from fingerprint_attendance.models import Device
        from fingerprint_attendance.services.commands import queue_command
        dev = Device.objects.get(serial_number=sys.argv[3])
        payload = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
        c = queue_command(dev, sys.argv[4], payload)
        print(json.dumps({"id": c.pk}))
    elif cmd == "results":
        from fingerprint_attendance.models import DeviceCommand
        print(json.dumps([
            {"command": c.command_string, "status": c.status, "return": c.return_code}
            for c in DeviceCommand.objects.order_by("id")
        ]))
    elif cmd == "pull":
        from fingerprint_attendance.models import Device
        from fingerprint_attendance.services.devices import register_device
        sn, host, port = sys.argv[3], sys.argv[4], int(sys.argv[5])
        call_command("migrate", verbosity=0)
        if not Device.objects.filter(serial_number=sn).exists():
            register_device(sn, status="active", mode="pull", pull_host=host, pull_port=port,
                            timezone=ZONE)
        call_command("fpa_pull_attendance", "--device", sn)
    else:
        raise SystemExit(f"unknown command {cmd}")


main()
