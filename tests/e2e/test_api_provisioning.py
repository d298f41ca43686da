#!/usr/bin/env python3
"""The provisioning routes of the admin API (docs/api.md) of a real abqd, over
HTTP, without the SOGo fixture.

Run by CTest as:  python3 test_api_provisioning.py --abqd PATH --abqctl PATH

abqd runs in front of tests/e2e/recorder.py (test_gate.py's harness): the
provisioning policy lives in the registry, so no mail server is needed. An
administrator's token is made with the real `abqctl admin add` and `abqctl
admin token`; each test asserts what an administrator's script sees, and that
abqctl sees the same values. Python 3 standard library only.
"""

import http.client
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as E  # noqa: E402
from test_gate import GateHarness  # noqa: E402

ADMIN = "prov.admin"


def call(method, path, body=None, token=None):
    """One request to the admin API with the token; (status, parsed JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", E.H.admin_port, timeout=30)
    headers = {"Authorization": "Bearer " + (token or Provisioning.token)}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


class Provisioning(unittest.TestCase):
    maxDiff = None
    token = None

    @classmethod
    def setUpClass(cls):
        env = dict(os.environ)
        env.pop("ABQD_CONFIG", None)
        p = subprocess.run([E.ABQCTL, "-c", E.H.conf, "admin", "add", ADMIN],
                           input="a long enough password\n", capture_output=True, text=True,
                           timeout=60, env=env)
        assert p.returncode == 0, p.stderr
        p = E.H.ctl("admin", "token", ADMIN, "prov", "--json")
        assert p.returncode == 0, p.stderr
        cls.token = json.loads(p.stdout)["token"]

    def setUp(self):
        self.assertIsNone(E.H.abqd.poll(), "abqd died (exit %s)" % E.H.abqd.returncode)

    def keys(self, path):
        status, doc = call("GET", path)
        self.assertEqual(status, 200, doc)
        self.assertEqual(set(doc), {"scope", "target", "version", "imposes", "provisioning"})
        return doc, {k["key"]: k for k in doc["provisioning"]}

    def test_1_defaults(self):
        doc, keys = self.keys("/api/v1/provisioning/global")
        self.assertFalse(doc["imposes"])
        self.assertIsInstance(doc["version"], int)
        self.assertNotEqual(doc["version"], 0)
        self.assertEqual(len(keys), 43)
        k = keys["MinDevicePasswordLength"]
        self.assertEqual((k["value"], k["source"], k["type"], k["min"], k["max"], k["since"]),
                         ("none", "default", "number", 1, 16, "12.0"))
        self.assertEqual(keys["AllowBluetooth"]["values"],
                         "0 (disabled), 1 (hands-free only) or 2 (allowed)")
        self.assertEqual(keys["RequireDeviceEncryption"]["since"], "12.1")
        self.assertIsNone(keys["AllowNonProvisionableDevices"]["since"])

    def test_2_set_get_unset(self):
        _, before = call("GET", "/api/v1/provisioning/account/alice")
        # A dry run writes nothing.
        status, doc = call("PUT", "/api/v1/provisioning/domain/Example.TEST/MinDevicePasswordLength",
                           {"value": "6", "dryRun": True})
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["dryRun"])
        _, keys = self.keys("/api/v1/provisioning/account/alice")
        self.assertEqual(keys["MinDevicePasswordLength"]["source"], "default")

        status, doc = call("PUT", "/api/v1/provisioning/domain/Example.TEST/MinDevicePasswordLength",
                           {"value": "6"})
        self.assertEqual((status, doc["ok"], doc["dryRun"]), (200, True, False), doc)
        status, doc = call("PUT", "/api/v1/provisioning/global/DevicePasswordEnabled",
                           {"value": "yes"})
        self.assertEqual(status, 200, doc)
        doc, keys = self.keys("/api/v1/provisioning/account/alice")
        self.assertEqual((doc["target"], doc["imposes"]), ("alice@example.test", True))
        self.assertNotEqual(doc["version"], before["version"])
        self.assertEqual((keys["MinDevicePasswordLength"]["value"],
                          keys["MinDevicePasswordLength"]["source"]), ("6", "domain"))
        self.assertEqual((keys["DevicePasswordEnabled"]["value"],
                          keys["DevicePasswordEnabled"]["source"]), ("1", "global"))
        # abqctl sees what the API wrote, with the same version.
        p = E.H.ctl("mobile", "getProvisioning", "account", "alice", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["version"], doc["version"])
        # The ABQ attributes listing does not show provisioning rows.
        status, attrs = call("GET", "/api/v1/attributes")
        self.assertEqual(status, 200)
        self.assertFalse([a for a in attrs["attributes"] if a["name"].startswith("prov:")])

        for path in ("/api/v1/provisioning/domain/example.test/MinDevicePasswordLength",
                     "/api/v1/provisioning/global/DevicePasswordEnabled"):
            status, doc = call("DELETE", path)
            self.assertEqual(status, 200, doc)
        doc, _ = self.keys("/api/v1/provisioning/account/alice")
        self.assertEqual(doc["version"], before["version"])
        self.assertFalse(doc["imposes"])

    def test_3_refusals(self):
        status, doc = call("PUT", "/api/v1/provisioning/global/MaxCalendarAgeFilter",
                           {"value": "3"})
        self.assertEqual(status, 400, doc)
        self.assertIn("MaxCalendarAgeFilter takes 0 (all), 4 (2 weeks)",
                      doc["error"]["message"])
        status, doc = call("PUT", "/api/v1/provisioning/global/NoSuchKey", {"value": "1"})
        self.assertEqual((status, doc["error"]["code"]), (404, "not_found"), doc)
        status, doc = call("PUT", "/api/v1/provisioning/global/AllowCamera", {})
        self.assertEqual(status, 400, doc)
        status, doc = call("DELETE", "/api/v1/provisioning/global/AllowCamera")
        self.assertEqual((status, doc["error"]["code"]), (409, "refused"), doc)
        self.assertIn("not set", doc["error"]["message"])
        status, doc = call("GET", "/api/v1/provisioning/domain/alice@example.test")
        self.assertEqual(status, 400, doc)
        status, doc = call("GET", "/api/v1/provisioning/global/AllowCamera")
        self.assertEqual(status, 405, doc)


def main():
    E.run_suite("api_provisioning", GateHarness(), tests=Provisioning,
                at_end=E.sigterm_clean_exit)


if __name__ == "__main__":
    main()
