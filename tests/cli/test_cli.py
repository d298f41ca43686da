#!/usr/bin/env python3
"""End-to-end tests of abqctl: the real binary, driven as an administrator would.

Run by CTest as:  python3 test_cli.py --abqctl PATH --simulate PATH
Each test gets a fresh folder with its own config file and store ("abqctl init"),
makes devices appear through abq-simulate (the daemon's own registry path), and
asserts what a user sees: exit codes, the one-line errors on stderr, the tables,
and the --json documents. Python 3 standard library only.
"""

import argparse
import hashlib
import json
import os
import pty
import pwd
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

ABQCTL = None
SIMULATE = None

CONF = "[store]\nurl = sqlite:abqd.db\n[eas]\ndefault_domain = example.com\n"

# 2026-01-01T00:00:00Z, for the tests that move the clock with ABQ_NOW.
T0 = 1767225600
DAY = 86400

DEVICE_KEYS = {
    "account", "deviceId", "deviceType", "model", "imei", "friendlyName", "os",
    "osLanguage", "phoneNumber", "mobileOperator", "userAgent", "easVersion",
    "lastAddress", "lastCommand", "firstSeen", "lastSeen", "state", "reason", "ruleId",
    "stateBy", "stateAt", "wipe", "provisionStatus",
}
CHANGE_KEYS = {"ok", "dryRun", "affected", "id", "changed"}
RULE_KEYS = {"id", "characteristic", "match", "pattern", "level", "order", "domain",
             "createdBy", "createdAt"}
HISTORY_KEYS = {"id", "at", "who", "what", "subject", "old", "new", "reason", "deviceId",
                "account"}
ENTRY_KEYS = {"deviceId", "account", "state", "createdBy", "createdAt"}
EXPLAIN_KEYS = {"account", "deviceId", "known", "domain", "mode", "modeSource", "step", "state",
                "reason", "ruleId", "rule", "missing", "explanation"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def base_env():
    """The environment of every run: no inherited config, clock or sudo user."""
    env = dict(os.environ)
    for k in ("ABQD_CONFIG", "ABQ_NOW", "SUDO_USER"):
        env.pop(k, None)
    return env


def expected_who(sudo_user=None):
    """The administrator name abqctl must record (its rule, computed independently)."""
    if os.getuid() == 0 and sudo_user:
        return sudo_user
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "uid %d" % os.getuid()


def table_rows(text):
    """Parse an abqctl table (columns separated by two or more spaces) into dicts."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return []
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = []
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):
            continue
        rows.append(dict(zip(header, cells)))
    return rows


class CliTest(unittest.TestCase):
    """A fresh folder, config and store per test, and helpers to run the tools."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="abqctl-test-")
        self.conf = os.path.join(self.dir, "abqd.conf")
        self.write("abqd.conf", CONF)
        self.env = base_env()
        out = self.ok("init")
        self.assertIn("created store", out)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "abqd.db")))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_ctl(self, *words, conf=None, env=None, stdin=None):
        args = [ABQCTL]
        if conf is not False:
            args += ["-c", conf or self.conf]
        args += [str(w) for w in words]
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run(args, input=stdin, capture_output=True, text=True, env=e,
                              timeout=300, cwd=self.dir)

    def ok(self, *words, **kw):
        """Run abqctl, expect exit 0 and a silent stderr, return stdout."""
        p = self.run_ctl(*words, **kw)
        self.assertEqual(p.returncode, 0, "abqctl %s: rc %d, stderr: %s" %
                         (" ".join(map(str, words)), p.returncode, p.stderr))
        self.assertEqual(p.stderr, "", "abqctl %s wrote to stderr" % " ".join(map(str, words)))
        return p.stdout

    def okj(self, *words, **kw):
        """Run abqctl --json, expect exit 0, return the parsed document."""
        return json.loads(self.ok(*(list(words) + ["--json"]), **kw))

    def refused(self, *words, rc=1, contains=(), lines=1, **kw):
        """Run abqctl, expect exit rc, nothing on stdout and `lines` lines on stderr."""
        p = self.run_ctl(*words, **kw)
        cmd = " ".join(map(str, words))
        self.assertEqual(p.returncode, rc, "abqctl %s: rc %d (stdout %r, stderr %r)" %
                         (cmd, p.returncode, p.stdout, p.stderr))
        self.assertEqual(p.stdout, "", "abqctl %s printed on stdout on failure" % cmd)
        err = p.stderr.splitlines()
        self.assertEqual(len(err), lines, "abqctl %s: expected %d stderr line(s): %r" %
                         (cmd, lines, p.stderr))
        for line in err:
            self.assertTrue(line.startswith("abqctl: "), line)
        for c in ([contains] if isinstance(contains, str) else contains):
            self.assertIn(c, p.stderr, "abqctl %s" % cmd)
        return p.stderr

    def seen(self, account, device_id, env=None, rc=0, **facts):
        """Make a device seen by abqd (abq-simulate); return its "STATE REASON [RULE]"."""
        args = [SIMULATE, "-c", self.conf, "seen", account, device_id]
        for k, v in facts.items():
            args += [k, v]
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run(args, capture_output=True, text=True, env=e, timeout=120)
        self.assertEqual(p.returncode, rc, "abq-simulate: %s" % p.stderr)
        return p.stdout.strip()

    def devices(self, *filters):
        """Every device (or the filtered list) keyed by (account, deviceId)."""
        doc = self.okj("mobile", "abq", "list", *filters)
        self.assertEqual(set(doc), {"devices"})
        result = {}
        for d in doc["devices"]:
            self.assertEqual(set(d), DEVICE_KEYS)
            result[(d["account"], d["deviceId"])] = d
        return result

    def state_of(self, account, device_id):
        d = self.devices().get((account, device_id))
        return None if d is None else (d["state"], d["reason"])

    def snapshot(self):
        """Everything a change could touch, to prove that nothing was written."""
        return (
            self.ok("mobile", "abq", "list", "--json"),
            self.ok("mobile", "abq", "export", "--json"),
            self.ok("mobile", "abq", "history", "--json"),
            self.ok("mobile", "abq", "listRules", "--json"),
            self.ok("config", "global", "get", "--json"),
            self.ok("config", "domain", "example.com", "get", "--json"),
        )

    def set_mode(self, mode, *scope):
        scope = scope or ("global",)
        return self.ok("config", *scope, "set", "attribute", "abqMode", "value", mode)

    def assert_changes(self, doc, dry_run):
        self.assertEqual(set(doc), CHANGE_KEYS)
        self.assertIs(doc["ok"], True)
        self.assertIs(doc["dryRun"], dry_run)
        self.assertIsInstance(doc["affected"], int)
        for c in doc["changed"]:
            self.assertEqual(set(c), {"account", "deviceId", "from", "to"})
            self.assertEqual(set(c["from"]), {"state", "reason", "ruleId"})
            self.assertEqual(set(c["to"]), {"state", "reason", "ruleId"})
        return {(c["account"], c["deviceId"]): c for c in doc["changed"]}


class StoryTest(CliTest):
    def test_product_story(self):
        """product.md's story as far as it goes without the daemon."""
        self.set_mode("Interactive")
        doc = self.okj("config", "global", "get", "attribute", "abqMode")
        self.assertEqual(doc["attributes"][0]["value"], "Interactive")
        self.assertEqual(doc["attributes"][0]["source"], "global")

        self.assertEqual(self.seen("ceo@example.com", "APPLCEO1", type="iPhone",
                                   model="iPhone16,2", os="iOS 18.1"), "Quarantined Mode")
        self.assertEqual(self.seen("bob", "SAMBOB1", type="Android", model="SM-S918B",
                                   os="Android 14"), "Quarantined Mode")
        self.assertEqual(self.seen("frontdesk", "OFFICE1", type="Android", model="Nokia",
                                   os="Android 12"), "Quarantined Mode")
        self.ok("mobile", "abq", "allow", "OFFICE1")

        # Both new phones wait in quarantine, in the table and in JSON.
        rows = table_rows(self.ok("mobile", "abq", "list", "status", "Quarantined"))
        self.assertEqual({(r["ACCOUNT"], r["DEVICE_ID"]) for r in rows},
                         {("ceo@example.com", "APPLCEO1"), ("bob@example.com", "SAMBOB1")})
        for r in rows:
            self.assertEqual(r["STATE"], "Quarantined")
            self.assertEqual(r["REASON"], "Mode")
        ceo = [r for r in rows if r["DEVICE_ID"] == "APPLCEO1"][0]
        self.assertEqual((ceo["TYPE"], ceo["MODEL"]), ("iPhone", "iPhone16,2"))
        q = self.devices("status", "Quarantined")
        self.assertEqual(set(q), {("ceo@example.com", "APPLCEO1"), ("bob@example.com", "SAMBOB1")})
        d = q[("ceo@example.com", "APPLCEO1")]
        self.assertEqual((d["deviceType"], d["model"], d["os"]), ("iPhone", "iPhone16,2",
                                                                   "iOS 18.1"))
        self.assertEqual((d["state"], d["reason"], d["stateBy"]), ("Quarantined", "Mode", "abqd"))
        self.assertRegex(d["firstSeen"], ISO)

        # The administrator allows the iPhone and blocks the Android.
        out = self.ok("mobile", "abq", "allow", "APPLCEO1", "account", "ceo@example.com")
        self.assertIn("APPLCEO1/ceo@example.com: Allowed", out)
        self.assertIn("changed: ceo@example.com / APPLCEO1: Quarantined (Mode) -> "
                      "Allowed (Individual)", out)
        out = self.ok("mobile", "abq", "block", "SAMBOB1")
        self.assertIn("SAMBOB1: Blocked (entry for every account)", out)
        self.assertIn("bob@example.com / SAMBOB1: Quarantined (Mode) -> Blocked (Individual)", out)
        self.assertEqual(self.state_of("ceo@example.com", "APPLCEO1"), ("Allowed", "Individual"))
        self.assertEqual(self.state_of("bob@example.com", "SAMBOB1"), ("Blocked", "Individual"))
        self.assertEqual(self.devices()[("bob@example.com", "SAMBOB1")]["stateBy"], expected_who())

        # History names who did it and when.
        hist = self.okj("mobile", "abq", "history")["history"]
        for h in hist:
            self.assertEqual(set(h), HISTORY_KEYS)
            self.assertRegex(h["at"], ISO)
        allowed = [h for h in hist if h["deviceId"] == "APPLCEO1" and h["what"] == "state"
                   and "Allowed" in (h["new"] or "")]
        blocked = [h for h in hist if h["deviceId"] == "SAMBOB1" and h["what"] == "state"
                   and "Blocked" in (h["new"] or "")]
        self.assertEqual(len(allowed), 1, hist)
        self.assertEqual(len(blocked), 1, hist)
        self.assertEqual(allowed[0]["who"], expected_who())
        self.assertEqual(blocked[0]["who"], expected_who())
        self.assertIn("Quarantined", allowed[0]["old"])
        text = self.ok("mobile", "abq", "history", "APPLCEO1")
        self.assertIn(expected_who(), text)
        self.assertIn("Allowed", text)

        # Strict: a new device is blocked at its first request.
        out = self.set_mode("Strict")
        self.assertIn("no device changed state", out)
        self.assertEqual(self.seen("dave", "NEWDEV1", type="iPhone", model="iPhone14,5",
                                   os="iOS 17"), "Blocked Mode")

        # The office phone changes hands: deleted, then decided anew.
        out = self.ok("mobile", "abq", "delete", "OFFICE1")
        self.assertIn("deleted OFFICE1", out)
        self.assertNotIn(("frontdesk@example.com", "OFFICE1"), self.devices())
        self.assertNotIn("OFFICE1", self.ok("mobile", "abq", "list"))
        self.assertNotIn("OFFICE1", self.ok("mobile", "abq", "export"))
        self.refused("mobile", "getDeviceInfo", "frontdesk@example.com", "OFFICE1", contains="no device")
        self.assertEqual(self.seen("newhire", "OFFICE1", type="Android", model="Nokia",
                                   os="Android 12"), "Blocked Mode")
        self.assertEqual(self.state_of("newhire@example.com", "OFFICE1"), ("Blocked", "Mode"))


class GrammarTest(CliTest):
    def test_usage_errors_exit_2(self):
        before = self.snapshot()
        cases = [
            ([], "usage:"),
            (["foo"], "unexpected word 'foo'"),
            (["mobile"], "usage: mobile"),
            (["mobile", "abq"], "usage: mobile abq"),
            (["mobile", "abq", "allow"], "usage: mobile abq allow DEVICE_ID [account ACCOUNT]"),
            (["mobile", "abq", "allow", "X", "extra"], "unexpected word 'extra'"),
            (["mobile", "abq", "allow", "X", "account"], "missing ACCOUNT"),
            (["mobile", "abq", "allow", "X", "account", "a", "account", "b"], "twice"),
            (["mobile", "abq", "set", "X"], "usage: mobile abq set DEVICE_ID STATE"),
            (["mobile", "abq", "explain", "X"], "usage: mobile abq explain DEVICE_ID account"),
            (["mobile", "abq", "setRule", "x", "Blocked"], "missing ORDER"),
            (["mobile", "abq", "purge", "180d"], "usage: mobile abq purge not-seen DURATION"),
            (["mobile", "abq", "import", "f"], "missing STATE"),
            (["mobile", "getDeviceInfo", "alice@example.com"], "missing DEVICE_ID"),
            (["config", "global", "set", "attribute", "abqMode"], "usage: config global set"),
            (["config", "domain"], "usage: config domain"),
            (["config", "planet", "get"], "unexpected word 'planet'"),
            (["mobile", "abq", "list", "--dry-run"], "--dry-run does not apply"),
            (["mobile", "abq", "list", "--bogus"], "unknown option '--bogus'"),
            (["mobile", "abq", "list", "status"], "missing STATUS after 'status'"),
            (["mobile", "abq", "history", "account"], "missing ACCOUNT after 'account'"),
            (["mobile", "abq", "history", "H1", "limit"], "missing N after 'limit'"),
        ]
        for words, msg in cases:
            with self.subTest(words=words):
                self.refused(*words, rc=2, contains=[msg, "usage:"])
        p = subprocess.run([ABQCTL, "mobile", "abq", "list", "-c"], capture_output=True,
                           text=True, env=self.env)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(len(p.stderr.splitlines()), 1)
        self.assertEqual(self.snapshot(), before)

    def test_words_are_case_insensitive_and_options_go_anywhere(self):
        self.ok("CONFIG", "Global", "SET", "Attribute", "abqmode", "VALUE", "interactive")
        doc = self.okj("config", "global", "get", "attribute", "ABQMODE")
        self.assertEqual(doc["attributes"][0]["value"], "Interactive")
        self.seen("bob", "SAMX1", type="Android", model="SM-A52", os="Android 13")
        doc = self.okj("MOBILE", "ABQ", "setrule", "SM-*", "blocked", "3", "CHARACTERISTIC",
                       "devicemodel", "MATCH", "GLOB")
        self.assertEqual(self.assert_changes(doc, False)[("bob@example.com", "SAMX1")]["to"]["state"],
                         "Blocked")
        rules = self.okj("Mobile", "Abq", "LISTRULES")["rules"]
        self.assertEqual([(r["characteristic"], r["match"], r["pattern"], r["level"])
                          for r in rules], [("DeviceModel", "glob", "SM-*", "Blocked")])
        # Options anywhere among the words, -c last.
        p = subprocess.run([ABQCTL, "mobile", "--json", "abq", "list", "-c", self.conf],
                           capture_output=True, text=True, env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([d["deviceId"] for d in json.loads(p.stdout)["devices"]], ["SAMX1"])
        self.ok("mobile", "abq", "set", "SAMX1", "allowed")
        self.assertEqual(self.state_of("bob@example.com", "SAMX1"), ("Allowed", "Individual"))

    def test_help_version_and_abqd_config(self):
        p = self.run_ctl("--help", conf=False)
        self.assertEqual(p.returncode, 0)
        for word in ("init", "config global get", "mobile abq allow DEVICE_ID", "setRule",
                     "deleteRule", "listRules", "setNotificationInterval", "adopt", "explain",
                     "history", "purge not-seen DURATION", "getDeviceList", "getDeviceInfo",
                     "getAllDevices", "import FILE STATE", "export", "--dry-run", "--json"):
            self.assertIn(word, p.stdout)
        p = self.run_ctl("--version", conf=False)
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^abqctl \d+\.\d+")
        # Without -c, ABQD_CONFIG names the file.
        self.ok("mobile", "abq", "allow", "ENVDEV", conf=False, env={"ABQD_CONFIG": self.conf})
        self.assertIn("ENVDEV", self.ok("mobile", "abq", "export"))
        self.refused("mobile", "abq", "list", conf=False,
                  env={"ABQD_CONFIG": os.path.join(self.dir, "nope.conf")},
                  contains="nope.conf")

    def test_init_twice(self):
        out = self.ok("init")
        self.assertIn("exists already", out)
        doc = self.okj("init")
        self.assertEqual((doc["ok"], doc["created"]), (True, False))
        self.assertTrue(doc["store"].endswith("abqd.db"))


class ConfigTest(CliTest):
    def test_scopes_and_sources(self):
        self.set_mode("Interactive")
        self.set_mode("Strict", "domain", "EXAMPLE.com")
        out = self.set_mode("Permissive", "account", "CORP\\Alice@Example.COM")
        self.assertIn("set account alice@example.com abqMode = Permissive", out)

        def get(*scope, name="abqMode"):
            doc = self.okj("config", *scope, "get", "attribute", name)
            self.assertEqual(len(doc["attributes"]), 1)
            a = doc["attributes"][0]
            self.assertEqual(set(a), {"name", "scope", "target", "value", "source"})
            return a

        a = get("global")
        self.assertEqual((a["value"], a["source"], a["scope"], a["target"]),
                         ("Interactive", "global", "global", None))
        a = get("domain", "example.com")
        self.assertEqual((a["value"], a["source"], a["target"]), ("Strict", "domain",
                                                                  "example.com"))
        a = get("account", "alice@example.com")
        self.assertEqual((a["value"], a["source"], a["target"]), ("Permissive", "account",
                                                                  "alice@example.com"))
        a = get("account", "bob")  # bare: the default domain
        self.assertEqual((a["value"], a["source"]), ("Strict", "domain"))
        a = get("account", "carol@other.org")
        self.assertEqual((a["value"], a["source"]), ("Interactive", "global"))
        a = get("account", "carol@other.org", name="abqMaxDevicesPerAccount")
        self.assertEqual((a["value"], a["source"]), ("0", "default"))

        # Every attribute at once, for people and for scripts.
        doc = self.okj("config", "account", "bob@example.com", "get")
        names = {a["name"]: a for a in doc["attributes"]}
        self.assertIn("abqMode", names)
        self.assertIn("abqMaxDevicesPerAccount", names)
        for a in doc["attributes"]:
            self.assertIn(a["source"], {"global", "domain", "account", "default"})
        rows = table_rows(self.ok("config", "account", "bob@example.com", "get"))
        mode = [r for r in rows if r["ATTRIBUTE"] == "abqMode"][0]
        self.assertEqual((mode["VALUE"], mode["SOURCE"]), ("Strict", "domain example.com"))
        self.assertEqual(len(rows), len(doc["attributes"]))

        # The modes decide devices at each scope.
        self.assertEqual(self.seen("alice", "A1", model="m", os="o"), "Allowed Mode")
        self.assertEqual(self.seen("bob", "B1", model="m", os="o"), "Blocked Mode")
        self.assertEqual(self.seen("carol@other.org", "C1", model="m", os="o"),
                         "Quarantined Mode")

        # Unsetting alice's override moves her device to the domain's mode.
        doc = self.okj("config", "account", "alice@example.com", "delete", "attribute",
                       "abqMode")
        ch = self.assert_changes(doc, False)
        self.assertEqual(ch[("alice@example.com", "A1")]["to"]["state"], "Blocked")
        self.assertEqual(get("account", "alice@example.com")["source"], "domain")
        self.refused("config", "account", "alice@example.com", "delete", "attribute", "abqMode",
                  contains="not set")
        out = self.ok("config", "domain", "example.com", "delete", "attribute", "abqMode")
        self.assertIn("changed: bob@example.com / B1: Blocked (Mode) -> Quarantined (Mode)", out)

        # setNotificationInterval is the global abqNotificationsInterval.
        out = self.ok("mobile", "abq", "setNotificationInterval", "45m")
        self.assertIn("abqNotificationsInterval = 45m", out)
        self.assertEqual(get("global", name="abqNotificationsInterval")["value"], "45m")
        doc = self.okj("mobile", "abq", "setNotificationInterval", "0")
        self.assert_changes(doc, False)
        self.assertEqual(get("global", name="abqNotificationsInterval")["value"], "0")


class ProvisioningTest(CliTest):
    """mobile setProvisioning / unsetProvisioning / getProvisioning."""

    def prov(self, *scope, key=None):
        words = ["mobile", "getProvisioning"] + list(scope) + ([key] if key else [])
        doc = self.okj(*words)
        self.assertEqual(set(doc), {"scope", "target", "version", "imposes", "provisioning"})
        for k in doc["provisioning"]:
            self.assertEqual(set(k), {"key", "value", "source", "default"})
            self.assertIn(k["source"], {"global", "domain", "account", "default"})
        return doc, {k["key"]: k for k in doc["provisioning"]}

    def test_set_get_sources(self):
        doc, keys = self.prov("global")
        self.assertEqual(len(keys), 43)
        self.assertFalse(doc["imposes"])
        v0 = doc["version"]
        self.assertEqual((keys["MinDevicePasswordLength"]["value"],
                          keys["MinDevicePasswordLength"]["source"]), ("none", "default"))

        out = self.ok("mobile", "setProvisioning", "domain", "EXAMPLE.com",
                      "mindevicepasswordlength", "6")
        self.assertIn("set domain example.com MinDevicePasswordLength = 6", out)
        out = self.ok("mobile", "setProvisioning", "global", "DevicePasswordEnabled", "yes")
        self.assertIn("set global DevicePasswordEnabled = 1", out)
        out = self.ok("mobile", "setProvisioning", "account", "CORP\\Alice", "AllowCamera",
                      "FALSE")
        self.assertIn("set account alice@example.com AllowCamera = 0", out)

        doc, keys = self.prov("account", "alice")
        self.assertEqual((doc["scope"], doc["target"], doc["imposes"]),
                         ("account", "alice@example.com", True))
        self.assertNotEqual(doc["version"], v0)
        self.assertEqual((keys["AllowCamera"]["value"], keys["AllowCamera"]["source"]),
                         ("0", "account"))
        self.assertEqual((keys["MinDevicePasswordLength"]["value"],
                          keys["MinDevicePasswordLength"]["source"]), ("6", "domain"))
        self.assertEqual((keys["DevicePasswordEnabled"]["value"],
                          keys["DevicePasswordEnabled"]["source"]), ("1", "global"))
        self.assertEqual((keys["AllowBluetooth"]["value"], keys["AllowBluetooth"]["source"]),
                         ("2", "default"))
        # Another domain's account inherits only the global value.
        _, keys = self.prov("account", "carol@other.org", key="MinDevicePasswordLength")
        self.assertEqual(list(keys), ["MinDevicePasswordLength"])
        self.assertEqual(keys["MinDevicePasswordLength"]["source"], "default")
        _, keys = self.prov("domain", "example.com")
        self.assertEqual(keys["AllowCamera"]["source"], "default")

        # For people: the table with the sources spelt out, then the version.
        out = self.ok("mobile", "getProvisioning", "account", "alice@example.com")
        version_line = out.rstrip().splitlines()[-1]
        self.assertEqual(version_line, "policy version %d" % doc["version"])
        rows = {r["KEY"]: r for r in table_rows("\n".join(out.splitlines()[:-1]))}
        self.assertEqual(rows["MinDevicePasswordLength"]["SOURCE"], "domain example.com")
        self.assertEqual(rows["AllowCamera"]["SOURCE"], "account alice@example.com")
        self.assertEqual(rows["MaxInactivityTimeDeviceLock"]["VALUE"], "none")
        out = self.ok("mobile", "getProvisioning", "global")
        self.assertNotIn("imposes nothing", out)
        self.ok("mobile", "unsetProvisioning", "global", "DevicePasswordEnabled")

        # History records each change; the ABQ attributes are untouched.
        hist = self.okj("mobile", "abq", "history")["history"]
        subjects = [(h["what"], h["subject"], h["new"]) for h in hist]
        self.assertIn(("provisioning", "domain example.com MinDevicePasswordLength", "6"),
                      subjects)
        self.assertIn(("provisioning", "account alice@example.com AllowCamera", "0"), subjects)
        self.assertIn(("provisioning", "global DevicePasswordEnabled", None), subjects)
        names = {a["name"] for a in self.okj("config", "global", "get")["attributes"]}
        self.assertFalse([n for n in names if "Provision" in n or n.startswith("prov:")])

        # Unset: inherited again; back to nothing imposed, and the first version.
        out = self.ok("mobile", "unsetProvisioning", "account", "alice", "AllowCamera")
        self.assertIn("unset account alice@example.com AllowCamera (back to the inherited "
                      "value)", out)
        doc = self.okj("mobile", "unsetProvisioning", "domain", "example.com",
                       "MinDevicePasswordLength")
        self.assert_changes(doc, False)
        doc, _ = self.prov("account", "alice")
        self.assertEqual(doc["version"], v0)
        self.assertFalse(doc["imposes"])
        self.assertIn("policy version %d (imposes nothing)" % v0,
                      self.ok("mobile", "getProvisioning", "global"))
        self.refused("mobile", "unsetProvisioning", "global", "AllowCamera",
                     contains="AllowCamera is not set at global scope")

    def test_dry_run_writes_nothing(self):
        before = self.snapshot()
        v0 = self.prov("domain", "example.com")[0]["version"]
        out = self.ok("mobile", "setProvisioning", "domain", "example.com",
                      "RequireDeviceEncryption", "1", "--dry-run")
        self.assertIn("would set domain example.com RequireDeviceEncryption = 1", out)
        doc = self.okj("mobile", "setProvisioning", "global", "AllowWiFi", "0", "--dry-run")
        self.assert_changes(doc, True)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.prov("domain", "example.com")[0]["version"], v0)

    def test_refusals(self):
        err = self.refused("mobile", "setProvisioning", "global", "NoSuchKey", "1",
                           contains="unknown provisioning key 'NoSuchKey' (known: ")
        self.assertIn("AllowNonProvisionableDevices", err)
        self.refused("mobile", "getProvisioning", "global", "NoSuchKey",
                     contains="unknown provisioning key 'NoSuchKey'")
        self.refused("mobile", "setProvisioning", "global", "abqMode", "Strict",
                     contains="unknown provisioning key 'abqMode'")
        cases = [
            ("MaxCalendarAgeFilter", "3",
             "MaxCalendarAgeFilter takes 0 (all), 4 (2 weeks), 5 (1 month), 6 (3 months) or "
             "7 (6 months), not '3'"),
            ("MinDevicePasswordLength", "20",
             "MinDevicePasswordLength takes a whole number from 1 to 16 or none (not sent); "
             "'20' is too large"),
            ("MaxDevicePasswordFailedAttempts", "3", "'3' is too small"),
            ("AllowBluetooth", "yes",
             "AllowBluetooth takes 0 (disabled), 1 (hands-free only) or 2 (allowed), not 'yes'"),
            ("DevicePasswordEnabled", "maybe",
             "DevicePasswordEnabled takes 1 or 0 (also TRUE/FALSE, yes/no, on/off), not "
             "'maybe'"),
            ("AllowCamera", "", "AllowCamera needs a value"),
            ("ApprovedApplicationList", "a b", "'a b' is not one"),
        ]
        for key, value, msg in cases:
            with self.subTest(key=key):
                self.refused("mobile", "setProvisioning", "global", key, value, contains=msg)
        self.refused("mobile", "setProvisioning", "domain", "a@b", "AllowCamera", "0",
                     contains="'a@b' is not a valid domain")
        # The grammar: a missing value is a usage error (2).
        self.refused("mobile", "setProvisioning", "global", "AllowCamera", rc=2,
                     contains="usage")
        self.assertEqual(self.prov("global")[0]["imposes"], False)

    def test_lists_and_none(self):
        out = self.ok("mobile", "setProvisioning", "global", "UnapprovedInROMApplicationList",
                      " Calc.exe ,Solitaire,, ")
        self.assertIn("UnapprovedInROMApplicationList = Calc.exe, Solitaire", out)
        self.ok("mobile", "setProvisioning", "global", "MaxInactivityTimeDeviceLock", "900")
        # An account can take a domain's value back to "not sent".
        self.ok("mobile", "setProvisioning", "account", "bob", "MaxInactivityTimeDeviceLock",
                "NONE")
        out = self.ok("mobile", "setProvisioning", "account", "bob",
                      "UnapprovedInROMApplicationList", "")
        self.assertIn("UnapprovedInROMApplicationList = (empty list)", out)
        _, keys = self.prov("account", "bob")
        self.assertEqual(keys["MaxInactivityTimeDeviceLock"]["value"], "none")
        self.assertEqual(keys["MaxInactivityTimeDeviceLock"]["source"], "account")
        self.assertEqual(keys["UnapprovedInROMApplicationList"]["value"], "")
        _, keys = self.prov("account", "carol")
        self.assertEqual(keys["UnapprovedInROMApplicationList"]["value"], "Calc.exe, Solitaire")
        self.assertEqual(keys["MaxInactivityTimeDeviceLock"]["value"], "900")


class EntryTest(CliTest):
    def test_entries_and_device_queries(self):
        self.set_mode("Interactive")
        self.seen("alice", "DEV1", type="iPhone", model="iPhone15,2", os="iOS 18",
                  imei="3561", ua="Apple-iPhone/1", eas="16.1", address="192.0.2.1",
                  command="Sync", friendly="Alice's phone", phone="+3312", operator="Orange",
                  lang="fr")
        self.seen("bob", "DEV1", type="iPhone", model="iPhone15,2", os="iOS 18")
        self.seen("bob", "DEV2", type="Android", model="Pixel 8", os="Android 14")

        doc = self.okj("mobile", "abq", "quarantine", "DEV2", "account", "bob@example.com")
        self.assert_changes(doc, False)
        self.assertEqual(self.state_of("bob@example.com", "DEV2"), ("Quarantined", "Individual"))
        doc = self.okj("mobile", "abq", "allow", "DEV1", "account", "alice@example.com")
        ch = self.assert_changes(doc, False)
        self.assertEqual(set(ch), {("alice@example.com", "DEV1")})
        self.assertEqual(ch[("alice@example.com", "DEV1")]["from"],
                         {"state": "Quarantined", "reason": "Mode", "ruleId": None})
        self.assertEqual(ch[("alice@example.com", "DEV1")]["to"],
                         {"state": "Allowed", "reason": "Individual", "ruleId": None})
        self.assertEqual(self.state_of("bob@example.com", "DEV1"), ("Quarantined", "Mode"))
        out = self.ok("mobile", "abq", "set", "DEV1", "Blocked")
        self.assertIn("DEV1: Blocked (entry for every account)", out)
        # The DeviceId/account entry still wins over the DeviceId entry.
        self.assertEqual(self.state_of("alice@example.com", "DEV1"), ("Allowed", "Individual"))
        self.assertEqual(self.state_of("bob@example.com", "DEV1"), ("Blocked", "Individual"))

        # getDeviceList / getAllDevices / getDeviceInfo
        self.assertEqual([d["deviceId"] for d in
                          self.okj("mobile", "getDeviceList", "BOB")["devices"]],
                         ["DEV1", "DEV2"])
        self.assertEqual(len(self.okj("mobile", "getAllDevices")["devices"]), 3)
        rows = table_rows(self.ok("mobile", "getAllDevices"))
        self.assertEqual(len(rows), 3)
        info = self.okj("mobile", "getDeviceInfo", "alice@example.com", "DEV1")
        self.assertEqual(set(info), {"device", "entries"})
        d = info["device"]
        self.assertEqual(set(d), DEVICE_KEYS)
        self.assertEqual((d["imei"], d["userAgent"], d["easVersion"], d["lastAddress"],
                          d["lastCommand"], d["friendlyName"], d["phoneNumber"],
                          d["mobileOperator"], d["osLanguage"]),
                         ("3561", "Apple-iPhone/1", "16.1", "192.0.2.1", "Sync",
                          "Alice's phone", "+3312", "Orange", "fr"))
        for e in info["entries"]:
            self.assertEqual(set(e), ENTRY_KEYS)
        self.assertEqual(sorted((e["account"] or "", e["state"]) for e in info["entries"]),
                         [("", "Blocked"), ("alice@example.com", "Allowed")])
        text = self.ok("mobile", "getDeviceInfo", "alice@example.com", "DEV1")
        self.assertIn("Alice's phone", text)
        self.assertIn("Allowed (Individual)", text)
        self.refused("mobile", "getDeviceInfo", "alice@example.com", "NOPE", contains="no device NOPE")

        # list filters
        self.assertEqual(set(self.devices("account", "bob@example.com")), {("bob@example.com", "DEV1"), ("bob@example.com", "DEV2")})
        self.assertEqual(set(self.devices("status", "Blocked")), {("bob@example.com", "DEV1")})
        self.assertEqual(len(self.devices("domain", "example.com")), 3)
        self.assertEqual(len(self.devices("domain", "other.org")), 0)
        self.assertIn("no devices", self.ok("mobile", "abq", "list", "domain", "other.org"))

        # delete with account removes one account's record and entry only
        doc = self.okj("mobile", "abq", "delete", "DEV1", "account", "alice@example.com")
        self.assert_changes(doc, False)
        self.assertEqual(set(self.devices()), {("bob@example.com", "DEV1"), ("bob@example.com", "DEV2")})
        self.assertEqual(self.ok("mobile", "abq", "export", "status", "Blocked").split(),
                         ["DEV1"])
        self.ok("mobile", "abq", "delete", "DEV1")
        self.assertEqual(set(self.devices()), {("bob@example.com", "DEV2")})
        self.refused("mobile", "abq", "delete", "DEV1", contains="DEV1")

    def test_export_groups(self):
        self.ok("mobile", "abq", "allow", "A1")
        self.ok("mobile", "abq", "block", "B1", "account", "bob@example.com")
        self.ok("mobile", "abq", "quarantine", "Q1")
        out = self.ok("mobile", "abq", "export")
        self.assertEqual(out.splitlines(), ["# Allowed", "A1", "# Blocked", "B1/bob@example.com",
                                            "# Quarantined", "Q1"])
        doc = self.okj("mobile", "abq", "export")
        self.assertEqual(len(doc["entries"]), 3)
        for e in doc["entries"]:
            self.assertEqual(set(e), ENTRY_KEYS)
            self.assertEqual(e["createdBy"], expected_who())
            self.assertRegex(e["createdAt"], ISO)
        self.assertEqual(self.okj("mobile", "abq", "export", "status", "Blocked")["entries"][0]
                         ["account"], "bob@example.com")


class RuleTest(CliTest):
    def rule(self, *words):
        doc = self.okj("mobile", "abq", "setRule", *words)
        self.assert_changes(doc, False)
        self.assertIsInstance(doc["id"], int)
        return doc["id"]

    def test_rules_every_characteristic_and_match(self):
        self.set_mode("Interactive")
        # Regexes match the whole value (as Zextras' Java rules do).
        r_id = self.rule("BAD.*", "Blocked", "10")
        r_type = self.rule("WP8", "Allowed", "20", "characteristic", "DeviceType", "match",
                           "exact")
        r_model = self.rule("SM-*", "Blocked", "30", "characteristic", "DeviceModel", "match",
                            "glob")
        r_os = self.rule("iOS 18.*", "Allowed", "40", "characteristic", "DeviceOS")
        r_ua = self.rule("Outlook-Android*", "Blocked", "50", "characteristic", "UserAgent",
                         "match", "glob")
        r_dom = self.rule("Pixel 8", "Allowed", "5", "characteristic", "DeviceModel", "match",
                          "exact", "domain", "Example.COM")
        self.assertEqual(len({r_id, r_type, r_model, r_os, r_ua, r_dom}), 6)

        def seen(acct, dev, ty, model, os_, ua="UA/1"):
            return self.seen(acct, dev, type=ty, model=model, os=os_, ua=ua)

        self.assertEqual(seen("bob@example.com", "BAD001", "Android", "X1", "Other 1"), "Blocked Rule %d" % r_id)
        self.assertEqual(seen("bob@example.com", "WP0001", "WP8", "Lumia", "WP 8.1"), "Allowed Rule %d" % r_type)
        self.assertEqual(seen("bob@example.com", "SAM001", "Android", "SM-A52", "Android 13"),
                         "Blocked Rule %d" % r_model)
        self.assertEqual(seen("bob@example.com", "IOS001", "iPhone", "iPhone15,2", "iOS 18.1"),
                         "Allowed Rule %d" % r_os)
        self.assertEqual(seen("bob@example.com", "OA0001", "Android", "Moto", "Android 13",
                              "Outlook-Android/2.0"), "Blocked Rule %d" % r_ua)
        self.assertEqual(seen("bob@example.com", "PIX001", "Android", "Pixel 8", "Android 14"),
                         "Allowed Rule %d" % r_dom)
        self.assertEqual(seen("carol@other.org", "PIX002", "Android", "Pixel 8", "Android 14"),
                         "Quarantined Mode")
        self.assertEqual(seen("bob@example.com", "NONE01", "Android", "Moto", "Android 13"),
                         "Quarantined Mode")
        self.assertEqual(self.devices()[("bob@example.com", "SAM001")]["ruleId"], r_model)

        rules = self.okj("mobile", "abq", "listRules")["rules"]
        self.assertEqual(len(rules), 6)
        for r in rules:
            self.assertEqual(set(r), RULE_KEYS)
            self.assertEqual(r["createdBy"], expected_who())
        self.assertEqual(rules[0]["id"], r_dom)  # domain rules first
        self.assertEqual(rules[0]["domain"], "example.com")
        by_id = {r["id"]: r for r in rules}
        self.assertEqual((by_id[r_id]["characteristic"], by_id[r_id]["match"],
                          by_id[r_id]["level"], by_id[r_id]["order"]),
                         ("DeviceId", "regex", "Blocked", 10))
        self.assertEqual((by_id[r_os]["characteristic"], by_id[r_os]["match"]),
                         ("DeviceOS", "regex"))
        self.assertEqual([r["id"] for r in self.okj("mobile", "abq", "listRules", "domain",
                                                      "example.com")["rules"]], [r_dom])
        rows = table_rows(self.ok("mobile", "abq", "listRules"))
        self.assertEqual(len(rows), 6)
        self.assertIn("Outlook-Android*", [r["PATTERN"] for r in rows])

        # Same rule again: updated, not duplicated.
        out = self.ok("mobile", "abq", "setRule", "SM-*", "Quarantined", "30", "characteristic",
                      "DeviceModel", "match", "glob")
        self.assertIn("rule %d:" % r_model, out)
        self.assertIn("bob@example.com / SAM001: Blocked (Rule %d) -> Quarantined (Rule %d)" %
                      (r_model, r_model), out)
        self.assertEqual(len(self.okj("mobile", "abq", "listRules")["rules"]), 6)

        # deleteRule by id and by pattern; devices are decided anew.
        doc = self.okj("mobile", "abq", "deleteRule", str(r_id))
        ch = self.assert_changes(doc, False)
        self.assertEqual(doc["id"], r_id)
        self.assertEqual(ch[("bob@example.com", "BAD001")]["to"]["state"], "Quarantined")
        out = self.ok("mobile", "abq", "deleteRule", "Outlook-Android*")
        self.assertIn("deleted rule %d" % r_ua, out)
        self.assertIn("bob@example.com / OA0001: Blocked (Rule %d) -> Quarantined (Mode)" % r_ua, out)
        self.refused("mobile", "abq", "deleteRule", "Pixel 8", contains="no rule")
        self.ok("mobile", "abq", "deleteRule", "Pixel 8", "domain", "example.com")
        self.assertEqual(self.state_of("bob@example.com", "PIX001"), ("Quarantined", "Mode"))
        self.refused("mobile", "abq", "deleteRule", "999", contains="no rule")
        self.assertEqual(sorted(r["id"] for r in self.okj("mobile", "abq", "listRules")["rules"]),
                         sorted([r_type, r_model, r_os]))
        self.assertIn("rule", [h["what"] for h in self.okj("mobile", "abq", "history")["history"]])

    def test_discovery(self):
        self.set_mode("Interactive")
        rid = self.rule("Galaxy*", "Blocked", "1", "characteristic", "DeviceModel", "match",
                        "glob")
        self.assertEqual(self.seen("dave", "DISC01", type="Android"),
                         "Discovery Discovery %d" % rid)
        self.assertIn(("Discovery", "Discovery"), [(d["state"], d["reason"]) for d in
                                                   self.devices("status", "Discovery").values()])
        x = self.okj("mobile", "abq", "explain", "DISC01", "account", "dave@example.com")
        self.assertEqual((x["state"], x["missing"], x["ruleId"], x["step"]),
                         ("Discovery", "DeviceModel", rid, 5))
        self.assertEqual(self.seen("dave", "DISC01", model="Galaxy S3", os="Android 4"),
                         "Blocked Rule %d" % rid)


class DryRunTest(CliTest):
    def test_dry_run_changes_nothing(self):
        self.set_mode("Interactive")
        for i, acct in enumerate(("alice@example.com", "bob@example.com", "carol@other.org")):
            self.assertEqual(self.seen(acct, "DEV%d" % i, type="Android", model="SM-A%d" % i,
                                       os="Android 13"), "Quarantined Mode")
        before = self.snapshot()

        out = self.ok("config", "global", "set", "attribute", "abqMode", "value", "Strict",
                      "--dry-run")
        self.assertIn("would set global abqMode = Strict", out)
        changes = [l for l in out.splitlines() if l.startswith("would change:")]
        self.assertEqual(len(changes), 3, out)
        for l in changes:
            self.assertIn("Quarantined (Mode) -> Blocked (Mode)", l)
        self.assertEqual(self.snapshot(), before)
        doc = self.okj("config", "global", "set", "attribute", "abqMode", "value", "Strict",
                       "--dry-run")
        ch = self.assert_changes(doc, True)
        self.assertEqual(set(ch), {("alice@example.com", "DEV0"), ("bob@example.com", "DEV1"), ("carol@other.org", "DEV2")})
        for c in ch.values():
            self.assertEqual((c["from"]["state"], c["to"]["state"]), ("Quarantined", "Blocked"))
        self.assertEqual(self.snapshot(), before)

        out = self.ok("mobile", "abq", "setRule", "SM-A[01]", "Allowed", "1", "characteristic",
                      "DeviceModel", "--dry-run")
        self.assertEqual(len([l for l in out.splitlines() if l.startswith("would change:")]), 2)
        self.assertIn("alice@example.com / DEV0: Quarantined (Mode) -> Allowed (Rule", out)
        self.assertEqual(self.snapshot(), before)

        # Every other change, in dry run, writes nothing either.
        imp = self.write("imp.txt", "DEV0\nDEV9/zed\n")
        dry = [
            ("mobile", "abq", "allow", "DEV0"),
            ("mobile", "abq", "block", "DEV0", "account", "alice@example.com"),
            ("mobile", "abq", "quarantine", "NEW1"),
            ("mobile", "abq", "set", "DEV1", "Allowed", "account", "bob@example.com"),
            ("mobile", "abq", "delete", "DEV1"),
            ("mobile", "abq", "import", imp, "Allowed"),
            ("mobile", "abq", "adopt"),
            ("mobile", "abq", "setNotificationInterval", "6h"),
            ("config", "domain", "example.com", "set", "attribute", "abqMode", "value",
             "Permissive"),
            ("config", "global", "delete", "attribute", "abqMode"),
        ]
        for words in dry:
            with self.subTest(words=words):
                doc = self.okj(*words, "--dry-run")
                self.assert_changes(doc, True)
                self.assertIn("would", self.ok(*words, "--dry-run"))
                self.assertEqual(self.snapshot(), before)
        self.assertIn("would change: alice@example.com / DEV0", self.ok("mobile", "abq", "allow", "DEV0",
                                                            "--dry-run"))
        self.assertIn("would change:", self.ok("config", "global", "delete", "attribute",
                                               "abqMode", "--dry-run"))

        # deleteRule and purge in dry run
        rid = self.rule_for_real()
        before = self.snapshot()
        out = self.ok("mobile", "abq", "deleteRule", str(rid), "--dry-run")
        self.assertIn("would delete rule %d" % rid, out)
        self.assertIn("would change: bob@example.com / DEV1: Blocked (Rule %d) -> Quarantined (Mode)" % rid,
                      out)
        self.assertEqual(self.snapshot(), before)
        later = {"ABQ_NOW": str(int(time.time()) + 400 * DAY)}
        out = self.ok("mobile", "abq", "purge", "not-seen", "180d", "--dry-run", env=later)
        self.assertIn("would forget 3 devices", out)
        self.assertEqual(self.snapshot(), before)

    def rule_for_real(self):
        doc = self.okj("mobile", "abq", "setRule", "^DEV1$", "Blocked", "1")
        self.assertEqual(self.state_of("bob@example.com", "DEV1"), ("Blocked", "Rule"))
        return doc["id"]


class AdoptPurgeTest(CliTest):
    def test_adopt(self):
        t0 = {"ABQ_NOW": str(T0)}
        t10 = {"ABQ_NOW": str(T0 + 10 * DAY)}
        self.assertEqual(self.seen("alice", "OLD1", env=t0, model="m", os="o"), "Allowed Mode")
        self.assertEqual(self.seen("bob", "NEW1", env=t10, model="m", os="o"), "Allowed Mode")
        self.assertEqual(self.seen("carol", "NEW2", env=t10, model="m", os="o"), "Allowed Mode")
        self.ok("mobile", "abq", "block", "NEW2", env=t10)

        out = self.ok("mobile", "abq", "adopt", "seen-since", "2026-01-05", "--dry-run", env=t10)
        self.assertIn("would adopt 1 device", out)
        self.assertEqual(self.ok("mobile", "abq", "export", "status", "Allowed"), "")
        doc = self.okj("mobile", "abq", "adopt", "seen-since", "2026-01-05", env=t10)
        self.assertEqual(doc["affected"], 1)
        self.assertEqual(self.ok("mobile", "abq", "export", "status", "Allowed").split(),
                         ["NEW1/bob@example.com"])
        out = self.ok("mobile", "abq", "adopt", env=t10)
        self.assertIn("adopted 1 device", out)
        self.assertEqual(sorted(self.ok("mobile", "abq", "export", "status", "Allowed").split()),
                         ["NEW1/bob@example.com", "OLD1/alice@example.com"])
        # Switching ABQ on cuts no adopted phone off; a new one is blocked.
        out = self.set_mode("Strict")
        self.assertIn("no device changed state", out)
        self.assertEqual(self.state_of("alice@example.com", "OLD1"), ("Allowed", "Individual"))
        self.assertEqual(self.seen("dave", "NEW3", env=t10, model="m", os="o"), "Blocked Mode")
        self.refused("mobile", "abq", "adopt", "seen-since", "last-tuesday", contains="seen-since")

    def test_purge(self):
        t0 = {"ABQ_NOW": str(T0)}
        t200 = {"ABQ_NOW": str(T0 + 200 * DAY)}
        t201 = {"ABQ_NOW": str(T0 + 201 * DAY)}
        self.seen("alice", "STALE1", env=t0, model="m", os="o")
        self.seen("bob", "FRESH1", env=t200, model="m", os="o")
        self.ok("mobile", "abq", "allow", "STALE1", env=t0)
        before = self.snapshot()
        out = self.ok("mobile", "abq", "purge", "not-seen", "180d", "--dry-run", env=t201)
        self.assertIn("would forget 1 device", out)
        self.assertIn("alice@example.com / STALE1", out)
        self.assertEqual(self.snapshot(), before)
        doc = self.okj("mobile", "abq", "purge", "not-seen", "180d", env=t201)
        ch = self.assert_changes(doc, False)
        self.assertEqual(doc["affected"], 1)
        self.assertEqual(set(ch), {("alice@example.com", "STALE1")})
        self.assertIsNone(ch[("alice@example.com", "STALE1")]["to"]["state"])
        self.assertEqual(set(self.devices()), {("bob@example.com", "FRESH1")})
        self.assertIn("STALE1", self.ok("mobile", "abq", "export"))  # entries stay
        self.assertIn("purge", [h["what"] for h in
                                self.okj("mobile", "abq", "history", "STALE1")["history"]])
        self.refused("mobile", "abq", "purge", "not-seen", "soon", contains="not-seen 'soon'")
        self.refused("mobile", "abq", "purge", "not-seen", "0", contains="more than 0")


class ListsTest(CliTest):
    """list shows the lists as the administrator filled them: every device, then every
    entry no device has used yet, marked "not seen yet" (and "notSeenYet" in JSON)."""

    def unseen(self, doc):
        rows = [d for d in doc["devices"] if d.get("notSeenYet")]
        for d in rows:
            self.assertEqual(set(d), DEVICE_KEYS | {"notSeenYet"})
            self.assertIs(d["notSeenYet"], True)
            self.assertEqual((d["reason"], d["lastSeen"], d["model"]), ("Individual", None, None))
        for d in doc["devices"]:
            if not d.get("notSeenYet"):
                self.assertEqual(set(d), DEVICE_KEYS, "a device row gained a field")
        return {(d["account"], d["deviceId"]): d["state"] for d in rows}

    def test_entries_not_seen_yet_are_listed(self):
        self.ok("mobile", "abq", "allow", "IPHONE01")
        self.ok("mobile", "abq", "block", "SAMX", "account", "bob")
        rows = table_rows(self.ok("mobile", "abq", "list", "status", "Allowed"))
        self.assertEqual([(r["ACCOUNT"], r["DEVICE_ID"], r["STATE"], r["LAST_SEEN"])
                          for r in rows],
                         [("(any account)", "IPHONE01", "Allowed", "not seen yet")])
        self.assertEqual(self.unseen(self.okj("mobile", "abq", "list")),
                         {(None, "IPHONE01"): "Allowed", ("bob@example.com", "SAMX"): "Blocked"})
        d = self.okj("mobile", "abq", "list", "status", "Blocked")["devices"][0]
        self.assertEqual((d["stateBy"], d["firstSeen"]), (expected_who(), None))
        self.assertRegex(d["stateAt"], ISO)
        # Filters apply to the entries: an entry for every account is no one account's.
        self.assertEqual(self.unseen(self.okj("mobile", "abq", "list", "account", "bob")),
                         {("bob@example.com", "SAMX"): "Blocked"})
        self.assertEqual(self.unseen(self.okj("mobile", "abq", "list", "domain",
                                              "example.com")),
                         {("bob@example.com", "SAMX"): "Blocked"})
        self.assertIn("no devices", self.ok("mobile", "abq", "list", "status", "Quarantined"))
        self.assertIn("no devices", self.ok("mobile", "abq", "list", "domain", "other.org"))
        self.assertIn("no devices", self.ok("mobile", "abq", "list", "status", "Discovery"))
        # Once a phone uses an entry, the phone is listed, and the entry no more.
        self.assertEqual(self.seen("bob", "SAMX", model="SM-S918B"), "Blocked Individual")
        self.assertEqual(self.seen("carol", "IPHONE01", model="iPhone16,2"), "Allowed Individual")
        doc = self.okj("mobile", "abq", "list")
        self.assertEqual(self.unseen(doc), {})
        self.assertEqual({(d["account"], d["deviceId"]) for d in doc["devices"]},
                         {("bob@example.com", "SAMX"), ("carol@example.com", "IPHONE01")})
        # An entry for one account stays unseen while another account's phone has the id.
        self.ok("mobile", "abq", "quarantine", "IPHONE01", "account", "dave")
        self.assertEqual(self.unseen(self.okj("mobile", "abq", "list")),
                         {("dave@example.com", "IPHONE01"): "Quarantined"})
        rows = table_rows(self.ok("mobile", "abq", "list", "account", "dave"))
        self.assertEqual([(r["ACCOUNT"], r["TYPE"], r["REASON"], r["LAST_SEEN"]) for r in rows],
                         [("dave@example.com", "-", "Individual", "not seen yet")])
        # getDeviceList and getAllDevices stay the devices abqd has seen.
        self.assertNotIn("dave", self.ok("mobile", "getAllDevices"))
        self.assertIn("no devices", self.ok("mobile", "getDeviceList", "dave"))


class ExplainHistoryTest(CliTest):
    def test_explain_every_step(self):
        self.set_mode("Interactive")
        self.seen("bob", "E1", type="Android", model="Moto", os="Android 13")
        text = self.ok("mobile", "abq", "explain", "E1", "account", "bob@example.com")
        self.assertIn("step 6: no entry, no rule matched; mode Interactive (global) -> "
                      "Quarantined", text)
        x = self.okj("mobile", "abq", "explain", "E1", "account", "bob@example.com")
        self.assertTrue(EXPLAIN_KEYS <= set(x), x)
        self.assertEqual((x["account"], x["deviceId"], x["known"], x["domain"], x["mode"],
                          x["modeSource"], x["step"], x["state"], x["reason"], x["ruleId"],
                          x["rule"], x["missing"]),
                         ("bob@example.com", "E1", True, "example.com", "Interactive", "global", 6,
                          "Quarantined", "Mode", None, None, None))

        self.set_mode("Strict", "domain", "example.com")
        self.assertIn("mode Strict (domain example.com) -> Blocked",
                      self.ok("mobile", "abq", "explain", "E1", "account", "bob@example.com"))
        self.assertEqual(self.okj("mobile", "abq", "explain", "E1", "account", "bob@example.com")
                         ["modeSource"], "domain")

        self.ok("mobile", "abq", "allow", "E1", "account", "bob@example.com")
        self.assertIn("step 3: entry E1/bob@example.com -> Allowed",
                      self.ok("mobile", "abq", "explain", "E1", "account", "bob@example.com"))
        self.ok("mobile", "abq", "block", "E2")
        x = self.okj("mobile", "abq", "explain", "E2", "account", "carol@example.com")
        self.assertEqual((x["known"], x["step"], x["state"], x["reason"]),
                         (False, 3, "Blocked", "Individual"))
        self.assertIn("step 3: entry E2 (every account) -> Blocked", x["explanation"])
        self.assertIn("not in the registry",
                      self.ok("mobile", "abq", "explain", "E2", "account", "carol@example.com"))

        rid = self.okj("mobile", "abq", "setRule", "SM-*", "Blocked", "1", "characteristic",
                       "DeviceModel", "match", "glob")["id"]
        self.seen("bob", "E3", type="Android", model="SM-G991B", os="Android 14")
        text = self.ok("mobile", "abq", "explain", "E3", "account", "bob@example.com")
        self.assertIn("step 5: rule %d (DeviceModel glob 'SM-*' -> Blocked) matches model "
                      "'SM-G991B'" % rid, text)
        x = self.okj("mobile", "abq", "explain", "E3", "account", "bob@example.com")
        self.assertEqual((x["step"], x["reason"], x["ruleId"]), (5, "Rule", rid))
        self.assertEqual(set(x["rule"]), RULE_KEYS)
        self.assertEqual(x["rule"]["pattern"], "SM-*")
        text = self.ok("mobile", "abq", "explain", "NEW9", "account", "bob@example.com")
        self.assertIn("needs the model", text)

        # Step 4: the account's limit.
        self.ok("config", "account", "dave@example.com", "set", "attribute", "abqMode", "value", "Permissive")
        self.ok("config", "account", "dave@example.com", "set", "attribute", "abqMaxDevicesPerAccount",
                "value", "1")
        t1 = {"ABQ_NOW": str(T0)}
        t2 = {"ABQ_NOW": str(T0 + 60)}
        self.assertEqual(self.seen("dave", "L1", env=t1, model="Nokia", os="x"), "Allowed Mode")
        self.assertEqual(self.seen("dave", "L2", env=t2, model="Nokia", os="x"), "Blocked Limit")
        x = self.okj("mobile", "abq", "explain", "L2", "account", "dave@example.com", env=t2)
        self.assertEqual((x["step"], x["state"], x["reason"], x["modeSource"]),
                         (4, "Blocked", "Limit", "account"))
        self.assertIn("step 4: abqMaxDevicesPerAccount is 1", x["explanation"])

        # Step 2: Disabled.
        self.ok("config", "account", "erin@example.com", "set", "attribute", "abqMode", "value", "Disabled")
        self.assertEqual(self.seen("erin", "D1", model="SM-X", os="x"), "Allowed Disabled")
        text = self.ok("mobile", "abq", "explain", "D1", "account", "erin@example.com")
        self.assertIn("step 2: mode Disabled (account erin@example.com) -> Allowed", text)
        self.refused("mobile", "abq", "explain", "D1", "account", "bad account",
                  contains="not a valid account")

    def test_history_filters(self):
        self.ok("mobile", "abq", "allow", "H1", "account", "alice@example.com")
        self.ok("mobile", "abq", "block", "H2")
        self.ok("mobile", "abq", "quarantine", "H1", "account", "bob@example.com")
        self.ok("mobile", "abq", "block", "H1", "account", "alice@example.com", env={"SUDO_USER": "carol@example.com"})
        all_ = self.okj("mobile", "abq", "history")["history"]
        self.assertGreaterEqual(len(all_), 4)
        ids = [h["id"] for h in all_]
        self.assertEqual(ids, sorted(ids))  # oldest first
        h1 = self.okj("mobile", "abq", "history", "H1")["history"]
        self.assertTrue(h1 and all(h["deviceId"] == "H1" for h in h1))
        alice = self.okj("mobile", "abq", "history", "account", "alice@example.com")["history"]
        self.assertTrue(alice and all(h["account"] == "alice@example.com" for h in alice))
        self.assertEqual(alice[-1]["who"], expected_who("carol@example.com"))
        last2 = self.okj("mobile", "abq", "history", "limit", "2")["history"]
        self.assertEqual([h["id"] for h in last2], sorted(ids, reverse=True)[:2])
        one = self.okj("mobile", "abq", "history", "H1", "account", "bob@example.com", "limit", "1")
        self.assertEqual(len(one["history"]), 1)
        self.assertEqual(one["history"][0]["account"], "bob@example.com")
        rows = table_rows(self.ok("mobile", "abq", "history", "H2"))
        self.assertTrue(rows)
        self.assertEqual(rows[0]["WHO"], expected_who())
        self.assertEqual(rows[0]["SUBJECT"], "H2")
        self.refused("mobile", "abq", "history", "limit", "0", contains="limit '0'")
        self.refused("mobile", "abq", "history", "limit", "many", contains="limit 'many'")


class OutputHygieneTest(CliTest):
    """What a phone reported reaches the administrator's terminal escaped, never raw."""

    # A model that would clear the screen, go back to the start of the line and open
    # a C1 control sequence (U+009B, CSI, as UTF-8); the other facts with more of the same.
    MODEL = "Evil\x1b[2J\rX\x9b2J"
    MODEL_SHOWN = "Evil\\x1b[2J\\x0dX\\xc2\\x9b2J"
    FACTS = {
        "type": "Type\x07\x1b]0;title\x07",
        "os": "OS\x7f\x08\x08",
        "ua": b"UA\x9b\xff\xc0\xafend",  # not UTF-8: a lone CSI byte, 0xff, an overlong
        "imei": "35\x1b[8m",
        "friendly": "Line one\nabqctl: forged line",
        "phone": "+1\x1b[6n",
        "operator": "Op\xc2\x85".encode("latin-1"),  # NEL, U+0085, as UTF-8 bytes
    }

    def run_bytes(self, *words):
        """Run abqctl and return its stdout as bytes (exit 0, nothing on stderr)."""
        p = subprocess.run([ABQCTL, "-c", self.conf] + list(words), capture_output=True,
                           env=self.env, timeout=300, cwd=self.dir)
        self.assertEqual(p.returncode, 0, "abqctl %r: %r" % (words, p.stderr))
        self.assertEqual(p.stderr, b"")
        return p.stdout

    def assert_clean(self, out, what):
        """out is UTF-8 with no control character but LF, no DEL and no C1 control."""
        try:
            text = out.decode("utf-8")
        except UnicodeDecodeError as ex:
            self.fail("%s: not UTF-8 (%s): %r" % (what, ex, out))
        bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
        self.assertEqual(bad, [], "%s: raw control characters in %r" % (what, text))
        return text

    def hostile_device(self):
        args = [SIMULATE, "-c", self.conf, "seen", "bob", "EVIL1", "model", self.MODEL]
        for k, v in self.FACTS.items():
            args += [k, v]
        p = subprocess.run(args, capture_output=True, env=self.env, timeout=120)
        self.assertEqual(p.returncode, 0, "abq-simulate: %r" % p.stderr)

    def test_device_text_is_escaped(self):
        self.set_mode("Interactive")
        self.hostile_device()
        info = self.assert_clean(self.run_bytes("mobile", "getDeviceInfo", "bob", "EVIL1"),
                                 "getDeviceInfo")
        lines = dict(re.split(r"\s{2,}|(?<=:) ", l, maxsplit=1) for l in info.splitlines())
        self.assertEqual(lines["model:"], self.MODEL_SHOWN)
        self.assertEqual(lines["type:"], "Type\\x07\\x1b]0;title\\x07")
        self.assertEqual(lines["os:"], "OS\\x7f\\x08\\x08")
        self.assertEqual(lines["user agent:"], "UA\\x9b\\xff\\xc0\\xafend")
        self.assertEqual(lines["imei:"], "35\\x1b[8m")
        self.assertEqual(lines["friendly name:"], "Line one\\x0aabqctl: forged line")
        self.assertEqual(lines["phone number:"], "+1\\x1b[6n")
        self.assertEqual(lines["operator:"], "Op\\xc2\\x85")
        self.assertNotIn("\nabqctl: forged line", info)
        # The same device in every listing of devices: one row, escaped.
        for words in (("mobile", "abq", "list"), ("mobile", "getDeviceList", "bob"),
                      ("mobile", "getAllDevices"), ("mobile", "abq", "list", "status",
                                                    "Quarantined")):
            text = self.assert_clean(self.run_bytes(*words), " ".join(words))
            rows = table_rows(text)
            self.assertEqual(len(text.splitlines()), 2, text)
            self.assertEqual(rows[0]["MODEL"], self.MODEL_SHOWN, words)
            self.assertEqual(rows[0]["TYPE"], "Type\\x07\\x1b]0;title\\x07", words)
        # explain quotes the model a rule matched.
        rid = self.okj("mobile", "abq", "setRule", "Evil*", "Blocked", "1", "characteristic",
                       "DeviceModel", "match", "glob")["id"]
        self.hostile_device()
        text = self.assert_clean(self.run_bytes("mobile", "abq", "explain", "EVIL1", "account",
                                                "bob"), "explain")
        self.assertIn("rule %d (DeviceModel glob 'Evil*' -> Blocked) matches model '%s'"
                      % (rid, self.MODEL_SHOWN), text)
        self.assertIn("model %s, OS OS\\x7f" % self.MODEL_SHOWN, text)
        # --json keeps the text exactly, escaped by JSON and in ASCII only (no raw C1).
        raw = self.run_bytes("mobile", "abq", "list", "--json")
        self.assert_clean(raw, "list --json")
        self.assertTrue(all(b < 0x80 for b in raw), raw)
        (d,) = json.loads(raw)["devices"]
        self.assertEqual(d["model"], self.MODEL)
        self.assertEqual(d["friendlyName"], self.FACTS["friendly"])
        self.assertEqual(d["userAgent"][:2], "UA")  # bytes that are not UTF-8 become '?'
        info = json.loads(self.assert_clean(
            self.run_bytes("mobile", "getDeviceInfo", "bob", "EVIL1", "--json"), "info --json"))
        self.assertEqual(info["device"]["model"], self.MODEL)

    def test_history_and_rules_are_escaped(self):
        # A rule's pattern may come from the console (another administrator's browser).
        pattern = "x\x1b[2J\r\x9by"
        shown = "x\\x1b[2J\\x0d\\xc2\\x9by"
        out = self.assert_clean(self.run_bytes("mobile", "abq", "setRule", pattern, "Blocked",
                                               "1", "characteristic", "DeviceModel", "match",
                                               "glob"), "setRule")
        self.assertIn("DeviceModel glob '%s' -> Blocked" % shown, out)
        text = self.assert_clean(self.run_bytes("mobile", "abq", "listRules"), "listRules")
        self.assertEqual(table_rows(text)[0]["PATTERN"], shown)
        text = self.assert_clean(self.run_bytes("mobile", "abq", "history"), "history")
        self.assertEqual(len(text.splitlines()), 2, text)
        self.assertIn("glob '%s'" % shown, table_rows(text)[0]["NEW"])
        self.assertEqual(self.okj("mobile", "abq", "history")["history"][0]["new"],
                         "DeviceModel glob '%s' -> Blocked, order 1" % pattern)
        # A store written before facts were checked: the raw bytes are in the rows.
        self.hostile_store_rows()
        text = self.assert_clean(self.run_bytes("mobile", "abq", "history", "OLD1"), "history")
        n = len(self.okj("mobile", "abq", "history", "OLD1")["history"])
        self.assertEqual(len(text.splitlines()), 1 + n, text)  # one line a row
        (row,) = [r for r in table_rows(text) if r["REASON"].startswith("seen")]
        self.assertEqual(row["REASON"], "seen\\x1b[2J\\x0d\\xc2\\x9b\\xff")
        self.assertEqual(row["WHO"], "abqd\\x0aabqctl: forged")
        text = self.assert_clean(self.run_bytes("mobile", "abq", "list"), "list")
        self.assertIn("Old\\x1b[2J\\x0d\\xc2\\x9b\\xff", text)
        info = self.assert_clean(self.run_bytes("mobile", "getDeviceInfo", "old", "OLD1"), "info")
        self.assertIn("Old\\x1b[2J\\x0d\\xc2\\x9b\\xff", info)
        for words in (("mobile", "abq", "history", "--json"), ("mobile", "abq", "list", "--json")):
            raw = self.run_bytes(*words)
            self.assertTrue(all(b < 0x80 for b in raw), raw)
            json.loads(raw)

    def hostile_store_rows(self):
        """A device and a history row with raw controls and bytes that are not UTF-8."""
        self.seen("old", "OLD1", model="m")
        db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        bad = b"\x1b[2J\r\xc2\x9b\xff"
        with db:
            db.execute("UPDATE devices SET model = CAST(? AS TEXT) WHERE device_id = 'OLD1'",
                       (b"Old" + bad,))
            db.execute("INSERT INTO history (at, who, what, subject, old_value, new_value, "
                       "reason, device_id, account) VALUES (?, CAST(? AS TEXT), 'state', "
                       "'OLD1/old', NULL, 'Quarantined', CAST(? AS TEXT), 'OLD1', 'old')",
                       (T0, b"abqd\nabqctl: forged", b"seen" + bad))
        db.close()


class ImportExportTest(CliTest):
    def test_import_export_10000(self):
        lines = []
        for i in range(10000):
            lines.append("IMP%05d" % i if i % 2 == 0 else
                         "IMP%05d/user%d@example.com" % (i, i % 50))
        path = self.write("big.txt", "# ten thousand\n" + "\n".join(lines) + "\n")
        t = time.monotonic()
        out = self.ok("mobile", "abq", "import", path, "Allowed")
        t_import = time.monotonic() - t
        self.assertIn("imported 10000 entries as Allowed", out)
        t = time.monotonic()
        exported = self.ok("mobile", "abq", "export", "status", "Allowed").splitlines()
        t_export = time.monotonic() - t
        self.assertEqual(sorted(exported), sorted(lines))
        sys.stderr.write("\n[cli] import of 10000 lines: %.2fs, export: %.2fs\n" %
                         (t_import, t_export))
        full = self.ok("mobile", "abq", "export")
        self.assertTrue(full.startswith("# Allowed\n"))
        self.assertIn("# Blocked", full)
        # Round trip through a second store.
        other = os.path.join(self.dir, "other")
        os.mkdir(other)
        conf2 = os.path.join(other, "abqd.conf")
        with open(conf2, "w") as f:
            f.write(CONF)
        self.ok("init", conf=conf2)
        self.ok("mobile", "abq", "import", "-", "Allowed", conf=conf2, stdin=full)
        self.assertEqual(self.ok("mobile", "abq", "export", conf=conf2), full)
        doc = self.okj("mobile", "abq", "export", "status", "Allowed")
        self.assertEqual(len(doc["entries"]), 10000)
        self.assertEqual({e["state"] for e in doc["entries"]}, {"Allowed"})
        # stdin import as another state
        out = self.ok("mobile", "abq", "import", "-", "blocked", stdin="S1\nS2/Bob\n")
        self.assertIn("imported 2 entries as Blocked", out)
        self.assertEqual(self.ok("mobile", "abq", "export", "status", "Blocked").split(),
                         ["S1", "S2/bob@example.com"])

    def test_import_bad_lines(self):
        self.ok("mobile", "abq", "allow", "KEEP1")
        before = self.snapshot()
        text = "\n".join([
            "GOOD1",            # 1
            "bad id here",      # 2
            "# comment",        # 3
            "GOOD2/alice",      # 4
            "X1/has space",     # 5
            "",                 # 6
            "A" * 65,           # 7
            "GOOD3/",           # 8
            "GOOD4",            # 9
        ]) + "\n"
        path = self.write("bad.txt", text)
        err = self.refused("mobile", "abq", "import", path, "Allowed", lines=4)
        for n in (2, 5, 7, 8):
            self.assertIn("line %d:" % n, err)
        for line in err.splitlines():
            self.assertIn("bad.txt", line)
        self.assertEqual(self.snapshot(), before)
        self.refused("mobile", "abq", "import", os.path.join(self.dir, "missing.txt"), "Allowed",
                  contains="missing.txt")
        self.refused("mobile", "abq", "import", path, "Maybe", contains="unknown state 'Maybe'")
        self.assertEqual(self.snapshot(), before)


class IdentityTest(CliTest):
    """One identity per person: every spelling of a login is one account."""

    def test_every_spelling_is_one_account(self):
        self.set_mode("Permissive")
        for acct, dev in (("alice", "DEV1"), ("EXAMPLE\\Alice", "DEV2"),
                          ("Alice@EXAMPLE.com", "DEV3"), ("example.com\\ALICE", "DEV4")):
            self.assertEqual(self.seen(acct, dev, model="m", os="o"), "Allowed Mode")
        self.seen("alice@other.org", "DEV5", model="m", os="o")
        self.assertEqual(set(self.devices()),
                         {("alice@example.com", d) for d in ("DEV1", "DEV2", "DEV3", "DEV4")} |
                         {("alice@other.org", "DEV5")})
        # Whatever spelling the administrator types finds the same devices.
        for word in ("alice", "ALICE", "EXAMPLE\\alice", "alice@Example.COM"):
            got = {(d["account"], d["deviceId"])
                   for d in self.okj("mobile", "getDeviceList", word)["devices"]}
            self.assertEqual(got, {("alice@example.com", d)
                                   for d in ("DEV1", "DEV2", "DEV3", "DEV4")}, word)
            text = self.ok("mobile", "getDeviceList", word)
            self.assertIn("alice@example.com", text)
            self.assertNotIn("alice@other.org", text)
        self.ok("mobile", "getDeviceInfo", "alice", "DEV2")
        # An entry or a block written under one spelling holds for every spelling.
        self.ok("mobile", "abq", "block", "DEV1", "account", "Alice")
        self.assertEqual(self.ok("mobile", "abq", "export", "status", "Blocked").split(),
                         ["DEV1/alice@example.com"])
        self.assertEqual(self.seen("EXAMPLE\\alice", "DEV1", model="m", os="o"),
                         "Blocked Individual")
        self.ok("config", "account", "ALICE", "set", "attribute", "abqMode", "value", "Strict")
        # ... and the mode set under one spelling decides a new device of another.
        self.assertEqual(self.seen("alice", "DEV9", model="m", os="o"), "Blocked Mode")
        for word in ("a@b@c", "alice@", "@example.com"):
            self.refused("mobile", "getDeviceList", word, contains="not a valid account")

    def test_bare_records_rewritten_once(self):
        # A store written while no default domain was set holds bare accounts.
        bare = self.write("bare.conf", "[store]\nurl = sqlite:abqd.db\n")
        for acct, dev in (("alice", "OLD1"), ("bob", "OLD2")):
            p = subprocess.run([SIMULATE, "-c", bare, "seen", acct, dev, "model", "m", "os", "o"],
                               capture_output=True, text=True, env=self.env, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
        self.ok("mobile", "abq", "block", "OLD2", "account", "bob", conf=bare)
        self.assertEqual(set(self.devices_with(bare)), {("alice", "OLD1"), ("bob", "OLD2")})
        # The first abqctl run with default_domain set gives them the domain.
        self.assertEqual(set(self.devices()),
                         {("alice@example.com", "OLD1"), ("bob@example.com", "OLD2")})
        self.assertEqual(self.ok("mobile", "abq", "export", "status", "Blocked").split(),
                         ["OLD2/bob@example.com"])
        db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        self.assertEqual(db.execute("SELECT value FROM meta WHERE key = 'account_domain'")
                         .fetchone()[0], "example.com")
        db.close()
        # The same person seen again is the same device, still blocked.
        self.assertEqual(self.seen("Bob", "OLD2", model="m", os="o"), "Blocked Individual")
        self.assertEqual(len(self.devices()), 2)

    def devices_with(self, conf):
        doc = self.okj("mobile", "abq", "list", conf=conf)
        return {(d["account"], d["deviceId"]): d for d in doc["devices"]}


class BadInputTest(CliTest):
    def test_refused_requests(self):
        self.set_mode("Interactive")
        self.seen("bob", "DEV1", model="m", os="o")
        self.ok("mobile", "abq", "setRule", "keep", "Allowed", "1")
        before = self.snapshot()
        cases = [
            (("config", "global", "set", "attribute", "abqColour", "value", "blue"),
             "unknown attribute 'abqColour'"),
            (("config", "global", "get", "attribute", "abqColour"), "unknown attribute"),
            (("config", "global", "set", "attribute", "abqMode", "value", "Sometimes"),
             "Sometimes"),
            (("config", "global", "set", "attribute", "abqMaxDevicesPerAccount", "value", "-3"),
             "abqMaxDevicesPerAccount"),
            (("config", "account", "bob@example.com", "set", "attribute", "abqNotificationsInterval",
              "value", "1h"), "cannot be set at account scope"),
            (("config", "domain", "a b", "get"), "not a valid domain"),
            (("config", "account", "", "get"), "not a valid account"),
            (("mobile", "abq", "set", "DEV1", "Maybe"), "unknown state 'Maybe'"),
            (("mobile", "abq", "set", "DEV1", "Discovery"), "unknown state 'Discovery'"),
            (("mobile", "abq", "list", "status", "Sleeping"), "unknown state 'Sleeping'"),
            (("mobile", "abq", "export", "status", "Sleeping"), "unknown state"),
            (("mobile", "abq", "allow", "A" * 65), "not a valid DeviceId"),
            (("mobile", "abq", "allow", "DEV1", "account", "a b"), "not a valid account"),
            (("mobile", "abq", "setRule", "x", "Blocked", "1", "characteristic", "Colour"),
             "unknown characteristic 'Colour'"),
            (("mobile", "abq", "setRule", "x", "Blocked", "1", "match", "fuzzy"),
             "unknown match 'fuzzy'"),
            (("mobile", "abq", "setRule", "x", "Sometimes", "1"), "unknown level 'Sometimes'"),
            (("mobile", "abq", "setRule", "x", "Blocked", "first"), "order 'first'"),
            (("mobile", "abq", "deleteRule", "nothing-like-this"), "no rule"),
            (("mobile", "abq", "setNotificationInterval", "5x"), "interval '5x'"),
            (("mobile", "abq", "delete", "NODEV"), "NODEV"),
            (("mobile", "getDeviceInfo", "bob@example.com", "NODEV"), "no device NODEV"),
        ]
        for words, msg in cases:
            with self.subTest(words=words):
                self.refused(*words, contains=msg)
                self.refused(*(list(words) + ["--json"]), contains=msg)
        err = self.refused("mobile", "abq", "setRule", "(unclosed", "Blocked", "1")
        self.assertIn("missing closing parenthesis", err)  # PCRE2's own text
        self.assertRegex(err, r"offset \d+")
        err = self.refused("mobile", "abq", "setRule", "a[", "Blocked", "1", "characteristic",
                        "UserAgent", "match", "regex")
        self.assertRegex(err, r"offset \d+")
        self.assertEqual(self.snapshot(), before)


class StoreFileTest(CliTest):
    def conf_for(self, url, name):
        return self.write(name, "[store]\nurl = %s\n[eas]\ndefault_domain = example.com\n" % url)

    def test_foreign_and_newer_stores(self):
        # A SQLite database of somebody else's.
        other = os.path.join(self.dir, "other.db")
        db = sqlite3.connect(other)
        db.execute("CREATE TABLE foo (x INTEGER)")
        db.execute("INSERT INTO foo VALUES (42)")
        db.commit()
        db.close()
        conf = self.conf_for("sqlite:other.db", "other.conf")
        self.refused("mobile", "abq", "list", conf=conf, contains="not an abqd store")
        self.refused("init", conf=conf, contains="not an abqd store")
        self.refused("mobile", "abq", "allow", "X", conf=conf, contains="not an abqd store")
        db = sqlite3.connect(other)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        self.assertEqual(tables, ["foo"])
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 0)
        db.close()

        # A text file.
        text = self.write("notes.txt", "these are my notes, not a database\n" * 20)
        conf = self.conf_for("sqlite:notes.txt", "notes.conf")
        self.refused("mobile", "abq", "list", conf=conf, contains="not an abqd store")
        self.refused("init", conf=conf, contains="notes.txt")
        with open(text) as f:
            self.assertEqual(f.read(), "these are my notes, not a database\n" * 20)

        # A store written by a newer abqd.
        newer = os.path.join(self.dir, "newer.db")
        db = sqlite3.connect(newer)
        db.execute("PRAGMA application_id = 1094865220")
        db.execute("PRAGMA user_version = 999")
        db.execute("CREATE TABLE future (x)")
        db.commit()
        db.close()
        conf = self.conf_for("sqlite:newer.db", "newer.conf")
        self.refused("mobile", "abq", "list", conf=conf, contains=["newer", "999"])
        self.refused("mobile", "abq", "block", "X", conf=conf, contains="newer")
        db = sqlite3.connect(newer)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 999)
        db.close()

        # Our own store, made newer afterwards.
        ours = os.path.join(self.dir, "abqd.db")
        db = sqlite3.connect(ours)
        db.execute("PRAGMA user_version = 999")
        db.commit()
        db.close()
        self.refused("mobile", "abq", "list", contains="newer")

    def test_missing_store_is_never_created(self):
        for url, path in (("sqlite:nothere.db", "nothere.db"),
                          ("sqlite:sub/nothere.db", "sub/nothere.db")):
            conf = self.conf_for(url, "missing.conf")
            for words in (("mobile", "abq", "list"), ("mobile", "abq", "allow", "X"),
                          ("config", "global", "set", "attribute", "abqMode", "value",
                           "Strict")):
                self.refused(*words, conf=conf, contains=["does not exist", "abqctl init"])
                self.assertFalse(os.path.exists(os.path.join(self.dir, path)))
        p = subprocess.run([SIMULATE, "-c", conf, "seen", "bob@example.com", "X"], capture_output=True,
                           text=True, env=self.env)
        self.assertEqual(p.returncode, 1)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "sub/nothere.db")))

    def test_bad_config_file(self):
        conf = self.write("bad.conf", "[store]\nurl = sqlite:abqd.db\n[eas]\nbogus = 1\n")
        self.refused("mobile", "abq", "list", conf=conf, contains="bad.conf:4")
        conf = self.write("bad2.conf", "[store]\nurl = sqlite:abqd.db\n[planets]\nmars = red\n")
        self.refused("mobile", "abq", "list", conf=conf, contains="bad2.conf:")
        self.refused("mobile", "abq", "list", conf=os.path.join(self.dir, "absent.conf"),
                  contains="absent.conf")

    def test_two_writers_at_once(self):
        procs = []
        for prefix in ("LEFT", "RIGHT"):
            script = ('for i in $(seq 1 40); do "%s" -c "%s" mobile abq allow %s$i '
                      '>/dev/null 2>>"%s/%s.err"; echo $?; done' %
                      (ABQCTL, self.conf, prefix, self.dir, prefix))
            procs.append(subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE,
                                          text=True, env=self.env))
        for prefix, p in zip(("LEFT", "RIGHT"), procs):
            out, _ = p.communicate(timeout=600)
            codes = out.split()
            self.assertEqual(len(codes), 40)
            self.assertEqual(set(codes), {"0"}, "failed runs of %s" % prefix)
            with open(os.path.join(self.dir, prefix + ".err")) as f:
                self.assertEqual(f.read(), "")
        got = self.ok("mobile", "abq", "export", "status", "Allowed").split()
        want = ["%s%d" % (p, i) for p in ("LEFT", "RIGHT") for i in range(1, 41)]
        self.assertEqual(sorted(got), sorted(want))

    def test_who_and_store_owner(self):
        self.ok("mobile", "abq", "allow", "W1", env={"SUDO_USER": "carol@example.com"})
        self.ok("mobile", "abq", "allow", "W2")
        hist = {h["subject"]: h["who"] for h in self.okj("mobile", "abq", "history")["history"]
                if h["what"] == "entry"}
        self.assertEqual(hist["W1"], expected_who("carol@example.com"))
        self.assertEqual(hist["W2"], expected_who())
        # [eas] user: a root abqctl gives the store files to the daemon's user.
        try:
            daemon = pwd.getpwnam("nobody")
        except KeyError:
            daemon = pwd.getpwnam("daemon")
        sub = os.path.join(self.dir, "owned")
        os.mkdir(sub)
        conf = os.path.join(sub, "abqd.conf")
        with open(conf, "w") as f:
            f.write(CONF + "user = %s\n" % daemon.pw_name)
        self.ok("init", conf=conf)
        self.ok("mobile", "abq", "allow", "OWN1", conf=conf)
        owner = daemon.pw_uid if os.geteuid() == 0 else os.geteuid()
        for name in os.listdir(sub):
            if name.startswith("abqd.db"):
                self.assertEqual(os.stat(os.path.join(sub, name)).st_uid, owner, name)


class JsonEveryCommandTest(CliTest):
    def test_every_command_has_json(self):
        self.set_mode("Interactive")
        self.seen("bob", "J1", type="Android", model="SM-1", os="Android 14")
        imp = self.write("j.txt", "J2\nJ3/bob\n")
        rid = self.okj("mobile", "abq", "setRule", "^ZZ", "Blocked", "9")["id"]
        shapes = [
            (("init",), {"ok", "created", "backend", "store"}),
            (("config", "global", "get"), {"attributes"}),
            (("config", "domain", "example.com", "get"), {"attributes"}),
            (("config", "account", "bob@example.com", "get", "attribute", "abqMode"), {"attributes"}),
            (("config", "global", "set", "attribute", "abqDiscoveryTimeout", "value", "10m"),
             CHANGE_KEYS),
            (("config", "domain", "example.com", "set", "attribute", "abqMode", "value",
              "Interactive"), CHANGE_KEYS),
            (("config", "account", "bob@example.com", "set", "attribute", "abqMode", "value",
              "Interactive"), CHANGE_KEYS),
            (("config", "account", "bob@example.com", "delete", "attribute", "abqMode"), CHANGE_KEYS),
            (("config", "domain", "example.com", "delete", "attribute", "abqMode"), CHANGE_KEYS),
            (("config", "global", "delete", "attribute", "abqDiscoveryTimeout"), CHANGE_KEYS),
            (("mobile", "abq", "list"), {"devices"}),
            (("mobile", "abq", "allow", "J1"), CHANGE_KEYS),
            (("mobile", "abq", "block", "J1", "account", "bob@example.com"), CHANGE_KEYS),
            (("mobile", "abq", "quarantine", "J4"), CHANGE_KEYS),
            (("mobile", "abq", "set", "J4", "Allowed"), CHANGE_KEYS),
            (("mobile", "abq", "import", imp, "Quarantined"), CHANGE_KEYS),
            (("mobile", "abq", "export"), {"entries"}),
            (("mobile", "abq", "setRule", "^YY", "Allowed", "2"), CHANGE_KEYS),
            (("mobile", "abq", "listRules"), {"rules"}),
            (("mobile", "abq", "deleteRule", str(rid)), CHANGE_KEYS),
            (("mobile", "abq", "setNotificationInterval", "1d"), CHANGE_KEYS),
            (("mobile", "abq", "adopt"), CHANGE_KEYS),
            (("mobile", "abq", "explain", "J1", "account", "bob@example.com"), EXPLAIN_KEYS),
            (("mobile", "abq", "history", "J1"), {"history"}),
            (("mobile", "abq", "purge", "not-seen", "1d"), CHANGE_KEYS),
            (("mobile", "getDeviceList", "bob@example.com"), {"devices"}),
            (("mobile", "getDeviceInfo", "bob@example.com", "J1"), {"device", "entries"}),
            (("mobile", "getAllDevices",), {"devices"}),
            (("mobile", "doResetDevice", "bob@example.com", "J1"), CHANGE_KEYS),
            (("mobile", "abq", "delete", "J4"), CHANGE_KEYS),
            (("mobile", "setProvisioning", "domain", "example.com", "AllowCamera", "0"),
             CHANGE_KEYS),
            (("mobile", "getProvisioning", "account", "bob@example.com"),
             {"scope", "target", "version", "imposes", "provisioning"}),
            (("mobile", "unsetProvisioning", "domain", "example.com", "AllowCamera"),
             CHANGE_KEYS),
        ]
        for words, keys in shapes:
            with self.subTest(words=words):
                doc = self.okj(*words)
                self.assertTrue(keys <= set(doc), "%s: %s" % (words, doc))
        self.assertEqual(self.okj("mobile", "abq", "setRule", "^XX", "Allowed", "3")["dryRun"],
                         False)


class NoticeTest(CliTest):
    def test_messages_and_outbox(self):
        """setABQMessage/getABQMessage/deleteABQMessage, and a block by abqctl that
        queues the user's notice (rendered with the domain template chosen by
        OSLanguage) in the outbox."""
        body = self.write("body.txt", "Ihr Gerät {model} ({device_id}) ist gesperrt.\n")
        self.assertIn("set domain example.com blocked message for locale de", self.ok(
            "mobile", "abq", "setABQMessage", "domain", "example.com", "blocked", "de",
            "subject", "Gerät {device_id} gesperrt", "body_plain_file", body))
        self.ok("mobile", "abq", "setABQMessage", "domain", "example.com", "blocked", "de",
                "reply_to", "help@example.com")
        doc = self.okj("mobile", "abq", "getABQMessage", "domain", "example.com", "blocked",
                       "de")
        self.assertEqual(doc["subject"], "Gerät {device_id} gesperrt")
        self.assertEqual(doc["replyTo"], "help@example.com")
        self.assertIn("{model}", doc["bodyPlain"])
        self.assertEqual(doc["domain"], "example.com")
        self.assertIn("subject:   Gerät", self.ok("mobile", "abq", "getABQMessage", "domain",
                                                 "example.com", "blocked", "de"))
        self.refused("mobile", "abq", "getABQMessage", "global", "quarantined", "en",
                     contains="no global quarantined message")
        self.refused("mobile", "abq", "setABQMessage", "global", "blocked", "en",
                     contains="nothing to set")
        self.refused("mobile", "abq", "setABQMessage", "global", "stolen", "en", "subject", "x",
                     contains="expected quarantined, blocked, allowed or wiped")
        self.refused("mobile", "abq", "setABQMessage", "global", "blocked", "d e", "subject",
                     "x", contains="locale")
        self.refused("mobile", "abq", "setABQMessage", "global", "blocked", "en",
                     "body_html_file", os.path.join(self.dir, "none.html"), contains="none.html")
        self.refused("mobile", "abq", "outbox", "status", "lost", contains="queued, sent or failed")
        self.assertIn("no notices", self.ok("mobile", "abq", "outbox"))

        # Without [smtp] from no notice is queued; with it, a block queues one.
        self.set_mode("Interactive")
        self.seen("bob", "NB1", model="Pixel 9", lang="de-DE")
        self.ok("mobile", "abq", "block", "NB1", "account", "bob@example.com")
        self.assertEqual(self.okj("mobile", "abq", "outbox")["notices"], [])
        self.write("abqd.conf", CONF + "[smtp]\nfrom = abq@example.com\n")
        self.seen("bob", "NB2", model="Pixel 9", lang="de-DE")
        self.ok("mobile", "abq", "block", "NB2", "account", "bob@example.com")
        notices = self.okj("mobile", "abq", "outbox")["notices"]
        self.assertEqual(len(notices), 1, notices)
        n = notices[0]
        self.assertEqual((n["kind"], n["recipient"], n["state"], n["attempts"], n["deviceId"]),
                         ("user-blocked", "bob@example.com", "queued", 0, "NB2"))
        self.assertEqual(set(n), {"id", "kind", "recipient", "account", "deviceId", "state",
                                  "attempts", "nextAttempt", "lastError", "created", "sent"})
        rows = table_rows(self.ok("mobile", "abq", "outbox", "status", "queued"))
        self.assertEqual([(r["KIND"], r["RECIPIENT"]) for r in rows],
                         [("user-blocked", "bob@example.com")])
        self.assertIn("no notices", self.ok("mobile", "abq", "outbox", "status", "sent"))
        db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        (msg,) = db.execute("SELECT rendered FROM outbox").fetchone()
        db.close()
        self.assertIn("Reply-To: help@example.com", msg)
        self.assertIn("Pixel 9 (NB2) ist gesperrt", msg)
        # A dry run queues nothing.
        self.seen("bob", "NB3", model="Pixel 9")
        self.ok("mobile", "abq", "block", "NB3", "account", "bob@example.com", "--dry-run")
        self.assertEqual(len(self.okj("mobile", "abq", "outbox")["notices"]), 1)

        self.assertIn("deleted", self.ok("mobile", "abq", "deleteABQMessage", "domain",
                                         "example.com", "blocked", "de"))
        self.refused("mobile", "abq", "deleteABQMessage", "domain", "example.com", "blocked",
                     "de", contains="no domain example.com blocked message")

    def test_messages_are_in_history(self):
        """setABQMessage and deleteABQMessage go through the registry: history names who
        set or removed which template, as for every other change."""
        self.ok("mobile", "abq", "setABQMessage", "global", "quarantined", "fr", "subject",
                "Appareil en quarantaine", "reply_to", "help@example.com")
        self.ok("mobile", "abq", "deleteABQMessage", "global", "quarantined", "fr")
        rows = [(h["what"], h["subject"], h["who"], h["old"], h["new"])
                for h in self.okj("mobile", "abq", "history")["history"]
                if h["what"] == "template"]
        self.assertEqual(rows, [
            ("template", "global quarantined fr", expected_who(), None, "replyTo, subject"),
            ("template", "global quarantined fr", expected_who(), "set", "deleted")])


TOKEN = re.compile(r"^abq_[A-Za-z0-9_-]{43}$")
ADMIN_KEYS = {"name", "createdBy", "createdAt", "passwordAt", "lastLogin", "tokens"}


class AdminTest(CliTest):
    """Administrators of the console and the JSON API: abqctl admin ..."""

    def db_rows(self, sql):
        db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def admin_history(self):
        return [(h["who"], h["subject"], h["new"])
                for h in self.okj("mobile", "abq", "history")["history"] if h["what"] == "admin"]

    def test_accounts_with_piped_passwords(self):
        who = expected_who()
        env = {"ABQ_NOW": str(T0)}
        self.assertEqual(self.ok("admin", "add", "alice@example.com", stdin="correct horse\n", env=env),
                         "administrator alice@example.com added\n")
        # No newline at the end, and a CR from a Windows editor: both fine.
        self.ok("admin", "add", "bob@example.com", stdin="battery staple", env=env)
        self.ok("admin", "add", "carol@example.com", stdin="tr0ub4dor&3\r\nignored second line\n", env=env)
        doc = self.okj("admin", "list")
        self.assertEqual(set(doc), {"admins"})
        self.assertEqual([a["name"] for a in doc["admins"]], ["alice@example.com", "bob@example.com", "carol@example.com"])
        for a in doc["admins"]:
            self.assertEqual(set(a), ADMIN_KEYS)
            self.assertEqual(a["createdBy"], who)
            self.assertEqual(a["createdAt"], "2026-01-01T00:00:00Z")
            self.assertEqual(a["passwordAt"], "2026-01-01T00:00:00Z")
            self.assertIsNone(a["lastLogin"])
            self.assertEqual(a["tokens"], 0)
        rows = table_rows(self.ok("admin", "list"))
        self.assertEqual([(r["NAME"], r["CREATED BY"], r["LAST LOGIN"], r["TOKENS"]) for r in rows],
                         [("alice@example.com", who, "never", "0"), ("bob@example.com", who, "never", "0"),
                          ("carol@example.com", who, "never", "0")])
        # The store has yescrypt hashes, never the passwords; history neither.
        hashes = dict(self.db_rows("SELECT name, password_hash FROM admins"))
        self.assertEqual(len(hashes), 3)
        for h in hashes.values():
            self.assertTrue(h.startswith("$y$"), h)
        with open(os.path.join(self.dir, "abqd.db"), "rb") as f:
            raw = f.read()
        for pw in (b"correct horse", b"battery staple", b"tr0ub4dor"):
            self.assertNotIn(pw, raw)
        hist = self.ok("mobile", "abq", "history", "--json")
        self.assertNotIn("horse", hist)
        self.assertNotIn("$y$", hist)

        # A new password, then delete.
        self.assertIn("has a new password",
                      self.ok("admin", "passwd", "alice@example.com", stdin="new password 2\n",
                              env={"ABQ_NOW": str(T0 + DAY)}))
        alice = self.okj("admin", "list")["admins"][0]
        self.assertEqual((alice["createdAt"], alice["passwordAt"]),
                         ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"))
        self.assertNotEqual(dict(self.db_rows("SELECT name, password_hash FROM admins"))["alice@example.com"],
                            hashes["alice@example.com"])
        self.assertIn("deleted", self.ok("admin", "delete", "carol@example.com"))
        self.assertEqual([a["name"] for a in self.okj("admin", "list")["admins"]],
                         ["alice@example.com", "bob@example.com"])
        self.assertEqual(self.okj("admin", "delete", "bob@example.com"),
                         {"ok": True, "name": "bob@example.com"})
        self.assertEqual(self.admin_history(),
                         [(who, "alice@example.com", "added"), (who, "bob@example.com", "added"),
                          (who, "carol@example.com", "added"), (who, "alice@example.com", "password changed"),
                          (who, "carol@example.com", "deleted"), (who, "bob@example.com", "deleted")])

    def test_refusals(self):
        self.ok("admin", "add", "alice@example.com", stdin="correct horse\n")
        before = (self.ok("admin", "list", "--json"), self.ok("mobile", "abq", "history", "--json"))
        cases = [
            (("admin", "add", "Alice"), "x" * 12, "bad administrator name"),
            (("admin", "add", "a/b"), "x" * 12, "bad administrator name"),
            (("admin", "add", ".x"), "x" * 12, "must begin with a letter or a digit"),
            (("admin", "add", "a" * 65), "x" * 12, "1 to 64"),
            (("admin", "add", "bob@example.com"), "1234567\n", "password too short: at least 8"),
            (("admin", "add", "bob@example.com"), "", "no password given"),
            (("admin", "add", "bob@example.com"), "\n", "password too short"),
            (("admin", "add", "bob@example.com"), "x" * 5000 + "\n", "password too long"),
            (("admin", "add", "alice@example.com"), "another password\n", "administrator 'alice@example.com' exists"),
            (("admin", "passwd", "nobody"), "another password\n", "no administrator 'nobody'"),
            (("admin", "passwd", "alice@example.com"), "short\n", "password too short"),
            (("admin", "delete", "nobody"), None, "no administrator 'nobody'"),
            (("admin", "delete", "No Body"), None, "bad administrator name"),
            (("admin", "token", "nobody"), None, "no administrator 'nobody'"),
            (("admin", "token", "alice@example.com", "two words"), None, "bad token label"),
            (("admin", "revoke", "nobody"), None, "no administrator 'nobody'"),
            (("admin", "revoke", "alice@example.com", "x" * 65), None, "bad token label"),
        ]
        for words, stdin, msg in cases:
            with self.subTest(words=words[:3]):
                self.refused(*words, stdin=stdin, contains=msg)
                self.refused(*(words + ("--json",)), stdin=stdin, contains=msg)
        self.refused("admin", "add", "--", "-x", stdin="x" * 12, contains="must begin with")
        usage = [
            (("admin",), "usage: admin"),
            (("admin", "add"), "usage: admin add NAME"),
            (("admin", "add", "a", "b"), "unexpected word 'b'"),
            (("admin", "token"), "usage: admin token NAME"),
            (("admin", "revoke", "a", "b", "c"), "unexpected word 'c'"),
            (("admin", "list", "x"), "unexpected word 'x'"),
            (("admin", "add", "bob@example.com", "--dry-run"), "--dry-run does not apply"),
            (("admin", "delete", "alice@example.com", "--dry-run"), "--dry-run does not apply"),
        ]
        for words, msg in usage:
            with self.subTest(words=words):
                self.refused(*words, rc=2, stdin="correct horse\n", contains=[msg, "usage:"])
        self.assertEqual((self.ok("admin", "list", "--json"),
                          self.ok("mobile", "abq", "history", "--json")), before)

    def test_tokens(self):
        who = expected_who()
        self.ok("admin", "add", "alice@example.com", stdin="correct horse\n")
        self.ok("admin", "add", "bob@example.com", stdin="battery staple\n")
        t1 = self.ok("admin", "token", "alice@example.com", "ci")
        self.assertTrue(t1.endswith("\n") and t1.count("\n") == 1, repr(t1))
        t1 = t1.strip()
        self.assertRegex(t1, TOKEN)
        doc = self.okj("admin", "token", "alice@example.com", "ci")
        self.assertEqual(set(doc), {"name", "label", "token"})
        self.assertEqual((doc["name"], doc["label"]), ("alice@example.com", "ci"))
        self.assertRegex(doc["token"], TOKEN)
        t3 = self.okj("admin", "token", "alice@example.com")
        self.assertIsNone(t3["label"])
        t4 = self.ok("admin", "token", "bob@example.com").strip()
        self.assertEqual(len({t1, doc["token"], t3["token"], t4}), 4)
        self.assertEqual({a["name"]: a["tokens"] for a in self.okj("admin", "list")["admins"]},
                         {"alice@example.com": 3, "bob@example.com": 1})
        # The store keeps the SHA-256 of each token, never the token.
        stored = self.db_rows("SELECT admin, label, hash, created_by FROM tokens ORDER BY id")
        self.assertEqual(stored, [
            ("alice@example.com", "ci", hashlib.sha256(t1.encode()).hexdigest(), who),
            ("alice@example.com", "ci", hashlib.sha256(doc["token"].encode()).hexdigest(), who),
            ("alice@example.com", None, hashlib.sha256(t3["token"].encode()).hexdigest(), who),
            ("bob@example.com", None, hashlib.sha256(t4.encode()).hexdigest(), who)])
        with open(os.path.join(self.dir, "abqd.db"), "rb") as f:
            raw = f.read()
        for t in (t1, t4):
            self.assertNotIn(t[4:].encode(), raw)
        self.assertNotIn(t1[4:], self.ok("mobile", "abq", "history", "--json"))

        # Revoke by label, then all of alice's; bob's stays.
        self.assertEqual(self.ok("admin", "revoke", "alice@example.com", "ci"),
                         "revoked 2 tokens of alice@example.com labelled ci\n")
        self.assertEqual(self.okj("admin", "revoke", "alice@example.com", "ci"),
                         {"name": "alice@example.com", "label": "ci", "revoked": 0})
        self.assertEqual(self.okj("admin", "revoke", "alice@example.com"),
                         {"name": "alice@example.com", "label": None, "revoked": 1})
        self.assertEqual(self.db_rows("SELECT admin FROM tokens"), [("bob@example.com",)])
        # Deleting bob takes his token along.
        self.ok("admin", "delete", "bob@example.com")
        self.assertEqual(self.db_rows("SELECT count(*) FROM tokens"), [(0,)])
        self.assertEqual([h[2] for h in self.admin_history()],
                         ["added", "added", "token added (ci)", "token added (ci)", "token added",
                          "token added", "tokens revoked (2, label ci)", "tokens revoked (1)",
                          "deleted (tokens revoked: 1)"])

    def run_on_terminal(self, words, answers):
        """Run abqctl with a terminal as stdin, answering each prompt; (rc, stderr, echoed)."""
        master, slave = pty.openpty()
        args = [ABQCTL, "-c", self.conf] + list(words)
        p = subprocess.Popen(args, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env, cwd=self.dir)
        os.close(slave)
        err, echoed = b"", b""
        try:
            for prompt, answer in answers:
                deadline = time.time() + 30
                while prompt.encode() not in err:
                    self.assertLess(time.time(), deadline, "no prompt %r: %r" % (prompt, err))
                    r, _, _ = select.select([p.stderr, master], [], [], 1)
                    if p.stderr in r:
                        chunk = os.read(p.stderr.fileno(), 4096)
                        self.assertTrue(chunk, "abqctl ended before %r: %r" % (prompt, err))
                        err += chunk
                    if master in r:
                        echoed += os.read(master, 4096)
                err = err.replace(prompt.encode(), b"", 1)
                os.write(master, (answer + "\n").encode())
            out, rest = p.communicate(timeout=60)
            err += rest
            while select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                echoed += chunk
        finally:
            os.close(master)
            if p.poll() is None:
                p.kill()
                p.wait()
        return p.returncode, out.decode(), err.decode(), echoed.decode()

    def test_password_from_terminal(self):
        rc, out, err, echoed = self.run_on_terminal(
            ["admin", "add", "alice@example.com"],
            [("New password for alice@example.com: ", "correct horse"), ("Again: ", "correct horse")])
        self.assertEqual((rc, out), (0, "administrator alice@example.com added\n"), err)
        self.assertNotIn("correct horse", echoed)  # typed without echo
        self.assertEqual([a["name"] for a in self.okj("admin", "list")["admins"]], ["alice@example.com"])
        rc, out, err, echoed = self.run_on_terminal(
            ["admin", "passwd", "alice@example.com"],
            [("New password for alice@example.com: ", "first try 1"), ("Again: ", "first try 2")])
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("abqctl: the passwords do not match", err)
        self.assertNotIn("first try", echoed + err)
        self.assertEqual(self.admin_history(), [(expected_who(), "alice@example.com", "added")])


class LoggerTest(CliTest):
    def test_add_list_remove(self):
        out = self.ok("mobile", "doAddAccountLogger", "Alice", "/tmp/a.log")
        self.assertRegex(out, r"^logger 1: alice@example.com \(every device\) to /tmp/a.log "
                         r"for 1h, until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$")
        doc = self.okj("mobile", "doAddAccountLogger", "bob", "until", "30m", "device", "APPL1",
                       "/tmp/b.log")
        self.assertTrue(CHANGE_KEYS <= set(doc), doc)
        self.assertEqual((doc["id"], doc["account"], doc["deviceId"], doc["file"], doc["dryRun"]),
                         (2, "bob@example.com", "APPL1", "/tmp/b.log", False))
        self.ok("mobile", "doAddAccountLogger", "carol", "device", "X1", "until", "1d", "/c")
        rows = table_rows(self.ok("mobile", "getAccountLoggers"))
        self.assertEqual([(r["ID"], r["ACCOUNT"], r["DEVICE"], r["FILE"]) for r in rows],
                         [("1", "alice@example.com", "every device", "/tmp/a.log"),
                          ("2", "bob@example.com", "APPL1", "/tmp/b.log"),
                          ("3", "carol@example.com", "X1", "/c")])
        lst = self.okj("mobile", "getAccountLoggers")["loggers"]
        self.assertEqual(set(lst[0]), {"id", "account", "deviceId", "file", "until", "active",
                                       "createdBy", "createdAt"})
        self.assertIsNone(lst[0]["deviceId"])
        self.assertTrue(all(l["active"] for l in lst))
        self.assertTrue(ISO.match(lst[1]["until"]))
        # An ended logger is listed as such until removed.
        later = {"ABQ_NOW": str(int(time.time()) + 2 * 3600)}
        rows = table_rows(self.ok("mobile", "getAccountLoggers", env=later))
        self.assertEqual([r["UNTIL"].endswith("(ended)") for r in rows], [True, True, False])
        self.assertEqual(self.ok("mobile", "doRemoveLogger", "2"), "removed 1 logger\n")
        self.refused("mobile", "doRemoveLogger", "2", contains="no logger with id 2")
        hist = self.okj("mobile", "abq", "history", "account", "bob")["history"]
        logs = [(h["what"], h["subject"], h["old"], h["new"]) for h in hist]
        self.assertEqual(len(logs), 2, logs)
        self.assertEqual(logs[0][:3], ("logger", "logger 2", None))
        self.assertTrue(logs[0][3].startswith("/tmp/b.log until "), logs)
        self.assertEqual(logs[1], ("logger", "logger 2", logs[0][3], "removed"))
        self.assertEqual(self.okj("mobile", "doRemoveLogger", "all")["affected"], 2)
        self.assertEqual(self.ok("mobile", "getAccountLoggers"), "no logger\n")
        self.assertEqual(self.okj("mobile", "getAccountLoggers"), {"loggers": []})
        self.refused("mobile", "doRemoveLogger", "all", contains="there is no logger")

    def test_dry_run_writes_nothing(self):
        out = self.ok("mobile", "doAddAccountLogger", "alice", "/tmp/a.log", "--dry-run")
        self.assertTrue(out.startswith("would log alice@example.com (every device) to /tmp/a.log"))
        self.assertEqual(self.okj("mobile", "doAddAccountLogger", "alice", "/tmp/a.log",
                                  "--dry-run")["dryRun"], True)
        self.assertEqual(self.ok("mobile", "getAccountLoggers"), "no logger\n")
        self.ok("mobile", "doAddAccountLogger", "alice", "/tmp/a.log")
        self.assertEqual(self.ok("mobile", "doRemoveLogger", "all", "--dry-run"),
                         "would remove 1 logger\n")
        self.assertEqual(len(self.okj("mobile", "getAccountLoggers")["loggers"]), 1)

    def test_refusals(self):
        self.refused("mobile", "doAddAccountLogger", "alice", "a.log",
                     contains="'a.log' is not an absolute path")
        self.refused("mobile", "doAddAccountLogger", "alice", "until", "8d", "/tmp/a",
                     contains="until 8d: a logger lasts at least 1s and at most 7d (604800 "
                              "seconds)")
        self.refused("mobile", "doAddAccountLogger", "alice", "until", "0", "/tmp/a",
                     contains="at most 7d")
        self.refused("mobile", "doAddAccountLogger", "alice", "until", "soon", "/tmp/a",
                     contains="until soon: not a duration")
        self.refused("mobile", "doAddAccountLogger", "alice", "device", "a/b", "/tmp/a",
                     contains="'a/b' is not a valid DeviceId")
        self.refused("mobile", "doAddAccountLogger", "a b@", "/tmp/a",
                     contains="is not a valid account")
        self.refused("mobile", "doRemoveLogger", "x", contains="'x' is not a logger's id")
        self.refused("mobile", "getAccountLoggers", "--dry-run", rc=2)
        self.assertEqual(self.ok("mobile", "getAccountLoggers"), "no logger\n")


class ResetDeviceTest(CliTest):
    """mobile doResetDevice ACCOUNT DEVICE_ID: the device's sync state (every
    collection) and its SendMail ClientIds are gone, the phone starts over; other
    devices and accounts keep theirs; recorded in history; unknown devices refused."""

    def states(self):
        db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        rows = db.execute("SELECT account, device_id, collection FROM syncstate "
                          "ORDER BY account, device_id, collection").fetchall()
        db.close()
        return rows

    def populate(self):
        self.set_mode("Interactive")
        self.seen("bob", "SAMBOB1", type="Android", model="SM-S918B", os="Android 14")
        self.seen("bob", "APPL2", type="iPhone", model="iPhone16,2", os="iOS 18")
        self.seen("carol", "SAMBOB1", type="Android", model="SM-S918B", os="Android 14")
        # The sync state as abqd writes it: a blob per collection.
        db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        for acct, dev, coll in (("bob@example.com", "SAMBOB1", "foldersync"),
                                ("bob@example.com", "SAMBOB1", "1"),
                                ("bob@example.com", "SAMBOB1", "ping"),
                                ("bob@example.com", "APPL2", "foldersync"),
                                ("carol@example.com", "SAMBOB1", "foldersync")):
            db.execute("INSERT INTO syncstate (account, device_id, collection, state, updated) "
                       "VALUES (?, ?, ?, ?, 1767225600)", (acct, dev, coll, b"key=3"))
        # The SendMail ClientIds native mode remembers (schema 10).
        for acct, dev, cid in (("bob@example.com", "SAMBOB1", "c1"),
                               ("bob@example.com", "SAMBOB1", "c2"),
                               ("bob@example.com", "APPL2", "c1"),
                               ("carol@example.com", "SAMBOB1", "c1")):
            db.execute("INSERT INTO clientids (account, device_id, client_id, at, sent) "
                       "VALUES (?, ?, ?, 1767225600, 1)", (acct, dev, cid))
        db.commit()
        db.close()

    def clientids(self):
        db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        rows = db.execute("SELECT account, device_id, client_id FROM clientids "
                          "ORDER BY account, device_id, client_id").fetchall()
        db.close()
        return rows

    def test_reset(self):
        self.populate()
        before = self.states()
        cids = self.clientids()
        info = self.okj("mobile", "getDeviceInfo", "bob", "SAMBOB1")["device"]
        # A dry run says what would go and removes nothing.
        self.assertEqual(self.ok("mobile", "doResetDevice", "bob", "sambob1", "--dry-run"),
                         "would reset the sync state of sambob1/bob@example.com: 3 collections; "
                         "the phone starts over at its next request\n"
                         "no device would change state\n")
        doc = self.okj("mobile", "doResetDevice", "bob", "SAMBOB1", "--dry-run")
        self.assertEqual((doc["dryRun"], doc["affected"], doc["changed"]), (True, 3, []))
        self.assertEqual(self.states(), before)
        self.assertEqual(self.clientids(), cids)

        self.assertEqual(self.ok("mobile", "doResetDevice", "bob", "SAMBOB1"),
                         "sync state reset for SAMBOB1/bob@example.com: 3 collections; "
                         "the phone starts over at its next request\nno device changed state\n")
        self.assertEqual(self.states(), [("bob@example.com", "APPL2", "foldersync"),
                                         ("carol@example.com", "SAMBOB1", "foldersync")])
        # Its ClientIds go with it: a message it repeats is sent again.
        self.assertEqual(self.clientids(), [("bob@example.com", "APPL2", "c1"),
                                            ("carol@example.com", "SAMBOB1", "c1")])
        # The device itself is as it was: state, facts.
        after = self.okj("mobile", "getDeviceInfo", "bob", "SAMBOB1")["device"]
        self.assertEqual(after, info)
        # Again: nothing left, not an error.
        doc = self.okj("mobile", "doResetDevice", "bob", "SAMBOB1")
        self.assertTrue(CHANGE_KEYS <= set(doc), doc)
        self.assertEqual((doc["dryRun"], doc["affected"]), (False, 0))
        hist = self.okj("mobile", "abq", "history", "SAMBOB1", "account", "bob")["history"]
        resets = [(h["what"], h["subject"], h["old"], h["new"], h["who"]) for h in hist
                  if h["what"] == "reset"]
        self.assertEqual([r[:4] for r in resets],
                         [("reset", "SAMBOB1/bob@example.com", "3 collections", "none"),
                          ("reset", "SAMBOB1/bob@example.com", "0 collections", "none")])
        self.assertTrue(all(r[4] for r in resets), resets)

    def test_refusals(self):
        self.populate()
        before = self.states()
        self.refused("mobile", "doResetDevice", "bob", "NOPE1",
                     contains="no device NOPE1 for account bob@example.com")
        self.refused("mobile", "doResetDevice", "dave", "SAMBOB1",
                     contains="no device SAMBOB1 for account dave@example.com")
        self.refused("mobile", "doResetDevice", "bob", "a/b", contains="is not a valid DeviceId")
        self.refused("mobile", "doResetDevice", "a b@", "SAMBOB1",
                     contains="is not a valid account")
        self.refused("mobile", "doResetDevice", "bob", rc=2, contains="usage")
        self.assertEqual(self.states(), before)
        hist = self.okj("mobile", "abq", "history", "account", "bob")["history"]
        self.assertEqual([h for h in hist if h["what"] == "reset"], [])


class MigrateTest(CliTest):
    """mobile abq migrate-store: a whole registry into an empty store, SQLite to
    SQLite here, and SQLite -> PostgreSQL -> SQLite when run under
    tests/store/pg_run.sh (ctest cli_migrate_pgsql, which requires it)."""

    def populate(self):
        self.write("abqd.conf", CONF + "[smtp]\nfrom = abq@example.com\n")
        self.set_mode("Interactive")
        self.ok("config", "domain", "example.com", "set", "attribute", "abqMaxDevicesPerAccount",
                "value", "5")
        self.ok("mobile", "abq", "setRule", "Nokia*", "Blocked", "10", "characteristic",
                "DeviceModel", "match", "glob")
        self.ok("mobile", "abq", "setRule", "gone", "Allowed", "5")
        self.ok("mobile", "abq", "setRule", "^SM-", "Allowed", "20", "characteristic",
                "DeviceModel", "match", "regex", "domain", "example.com")
        self.ok("mobile", "abq", "deleteRule", "gone")  # rule ids with a gap: 1 and 3
        self.seen("ceo@example.com", "APPLCEO1", type="iPhone", model="iPhone16,2", os="iOS 18")
        self.seen("bob", "SAMBOB1", type="Android", model="SM-S918B", os="Android 14")
        self.seen("bob", "NOK1", type="Android", model="Nokia 3", os="Android 12")
        self.ok("mobile", "abq", "allow", "APPLCEO1", "account", "ceo@example.com")
        self.ok("mobile", "abq", "block", "Mixed-Case-1")
        self.ok("mobile", "abq", "block", "SAMBOB1", "account", "bob@example.com")  # queues bob's notice
        body = self.write("body.txt", "Ihr Gerät {device_id} wartet.\n")
        self.ok("mobile", "abq", "setABQMessage", "global", "quarantined", "de", "subject",
                "Wartet", "body_plain_file", body)
        # An administrator with a token (schema v4).
        self.ok("admin", "add", "carol@example.com", stdin="correct horse\n")
        self.token = self.ok("admin", "token", "carol@example.com", "ci").strip()
        # The quarantine mailbox's sync state, as abqd writes it (a blob per collection).
        db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        db.execute("INSERT INTO syncstate (account, device_id, collection, state, updated) "
                   "VALUES ('ceo@example.com', 'APPLCEO1', 'foldersync', ?, 1767225600)",
                   (b"key=3\x00\xff binary",))
        # Native mode's folder ids (schema v9): ids 3 and 5 were given and deleted.
        db.executemany("INSERT INTO folders (account, folder_id, mailbox, mailbox_id, "
                       "uidvalidity, parent_id, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       FOLDERS)
        db.execute("INSERT INTO folder_counters (account, last_id) VALUES "
                   "('ceo@example.com', 5)")
        db.executemany("INSERT INTO pim_colls (%s) VALUES (%s)" % (PIM_COLL_COLS, ", ".join(
            "?" * len(PIM_COLLS[0]))), PIM_COLLS)
        db.executemany("INSERT INTO pim_items (%s) VALUES (%s)" % (PIM_ITEM_COLS, ", ".join(
            "?" * len(PIM_ITEMS[0]))), PIM_ITEMS)
        db.execute("INSERT INTO pim_counters (account, last_id) VALUES ('ceo@example.com', 3)")
        db.commit()
        db.close()

    def folders_sqlite(self, name):
        db = sqlite3.connect(os.path.join(self.dir, name))
        rows = (db.execute("SELECT account, folder_id, mailbox, mailbox_id, uidvalidity, "
                           "parent_id, created FROM folders ORDER BY account, mailbox")
                .fetchall(),
                db.execute("SELECT account, last_id FROM folder_counters").fetchall())
        db.close()
        return rows

    def pim_sqlite(self, name):
        db = sqlite3.connect(os.path.join(self.dir, name))
        rows = [db.execute(q).fetchall() for q in PIM_QUERIES]
        db.close()
        return rows

    def snapshot_of(self, conf):
        return [self.ok(*(w + ["--json"]), conf=conf) for w in (
            ["mobile", "abq", "list"], ["mobile", "abq", "export"],
            ["mobile", "abq", "history"], ["mobile", "abq", "listRules"],
            ["config", "global", "get"], ["config", "domain", "example.com", "get"],
            ["mobile", "abq", "outbox"],
            ["mobile", "abq", "getABQMessage", "global", "quarantined", "de"],
            ["admin", "list"])]

    def conf_for(self, name, url):
        return self.write(name, "[store]\nurl = %s\n[eas]\ndefault_domain = example.com\n"
                          "[smtp]\nfrom = abq@example.com\n" % url)

    def migrate(self, from_url, to_url):
        doc = self.okj("mobile", "abq", "migrate-store", from_url, to_url)
        self.assertEqual(set(doc), {"from", "to", "copied"})
        return doc["copied"]

    def check_copy(self, src_conf, dst_conf):
        before = self.snapshot_of(src_conf)
        after = self.snapshot_of(dst_conf)
        for b, a in zip(before, after):
            self.assertEqual(json.loads(b), json.loads(a))
        # Ids are kept: a rule's id, and the counters go on after them.
        rules = json.loads(after[3])["rules"]
        self.assertEqual(sorted(r["id"] for r in rules), [1, 3])
        out = self.ok("mobile", "abq", "setRule", "new*", "Blocked", "30", conf=dst_conf)
        self.assertIn("rule 4:", out)

    def test_migrate_sqlite(self):
        self.populate()
        src = "sqlite:abqd.db"
        copied = self.migrate(src, "sqlite:copy.db")
        self.assertEqual(copied["devices"], 3)
        self.assertEqual(copied["rules"], 2)
        self.assertEqual(copied["sync state"], 1)
        self.assertEqual(copied["outbox"], 1)  # bob's notice of the block
        self.assertEqual(copied["administrators"], 1)
        self.assertEqual(copied["tokens"], 1)
        self.assertEqual((copied["folders"], copied["folder ids"]), (3, 1))
        self.assertEqual(self.folders_sqlite("copy.db"),
                         (sorted(FOLDERS, key=lambda f: (f[0], f[2])),
                          [("ceo@example.com", 5)]))
        self.assertEqual((copied["collections"], copied["collection items"],
                          copied["collection ids"]), (2, 3, 1))
        self.assertEqual(self.pim_sqlite("copy.db"),
                         [PIM_COLLS, PIM_ITEMS, [("ceo@example.com", 3)]])
        self.assertGreater(copied["history"], 5)
        self.assertGreater(copied["change log"], 5)
        db = sqlite3.connect(os.path.join(self.dir, "copy.db"))
        self.assertEqual(db.execute("SELECT account, device_id, collection, state, updated FROM "
                                    "syncstate").fetchall(),
                         [("ceo@example.com", "APPLCEO1", "foldersync", b"key=3\x00\xff binary",
                           1767225600)])
        src_db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        q = "SELECT seq FROM sqlite_sequence WHERE name = 'changes'"
        self.assertEqual(db.execute(q).fetchall(), src_db.execute(q).fetchall())
        # The administrator's password hash and the token's hash, as they were.
        for q in ("SELECT name, password_hash, password_at FROM admins",
                  "SELECT admin, label, hash, created_at FROM tokens"):
            self.assertEqual(db.execute(q).fetchall(), src_db.execute(q).fetchall(), q)
            self.assertEqual(len(db.execute(q).fetchall()), 1, q)
        db.close()
        src_db.close()
        self.check_copy(self.conf, self.conf_for("copy.conf", "sqlite:copy.db"))

        # A destination that is not empty is refused, and left as it was.
        before = self.snapshot_of(os.path.join(self.dir, "copy.conf"))
        self.refused("mobile", "abq", "migrate-store", src, "sqlite:copy.db",
                     contains=("not empty", "copies into an empty store only"))
        self.assertEqual(before, self.snapshot_of(os.path.join(self.dir, "copy.conf")))
        self.refused("mobile", "abq", "migrate-store", src, src, contains="same store")
        # A failure half-way leaves the destination empty: one transaction.
        self.refused("mobile", "abq", "migrate-store", src, "sqlite:half.db",
                     env={"ABQ_STORE_FAULT": "6"}, contains="injected fault")
        self.assertEqual(self.migrate(src, "sqlite:half.db"), copied)
        self.refused("mobile", "abq", "migrate-store", "sqlite:none.db", "sqlite:new.db",
                     contains=("source", "does not exist"))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "new.db")))
        self.refused("mobile", "abq", "migrate-store", src, "mysql://x/y", contains="destination")
        self.refused("mobile", "abq", "migrate-store", src, rc=2, contains="usage")

    def test_migrate_postgresql(self):
        url = os.environ.get("ABQ_TEST_STORE_URL", "")
        if not url.startswith("postgres"):
            if REQUIRE_PG:
                self.fail("ABQ_TEST_STORE_URL is not a PostgreSQL URL (run under pg_run.sh)")
            return  # the plain cli run: cli_migrate_pgsql runs this half
        schema = "migrate_%d" % os.getpid()
        subprocess.run(["psql", "-X", "-q", url, "-c", "DROP SCHEMA IF EXISTS %s CASCADE; "
                        "CREATE SCHEMA %s" % (schema, schema)], check=True, capture_output=True)
        pg = "%s%soptions=-csearch_path%%3D%s" % (url, "&" if "?" in url else "?", schema)
        self.populate()
        copied = self.migrate("sqlite:abqd.db", pg)
        self.assertEqual((copied["devices"], copied["sync state"]), (3, 1))
        self.assertEqual((copied["folders"], copied["folder ids"]), (3, 1))
        # The folder ids and the counter they came from (ids 3 and 5 stay used).
        p = subprocess.run(["psql", "-X", "-A", "-t", "-F", "|", pg, "-c",
                            "SELECT account, folder_id, mailbox, coalesce(mailbox_id, '-'), "
                            "uidvalidity, coalesce(parent_id, '-'), created FROM folders "
                            "ORDER BY account, mailbox; SELECT account, last_id FROM "
                            "folder_counters"],
                           capture_output=True, text=True, check=True)
        want = ["|".join("-" if v is None else str(v) for v in f)
                for f in sorted(FOLDERS, key=lambda f: (f[0], f[2]))]
        self.assertEqual(p.stdout.splitlines(), want + ["ceo@example.com|5"])
        # The map of contacts, calendars and tasks, ids, sequences and counters kept.
        self.assertEqual((copied["collections"], copied["collection items"],
                          copied["collection ids"]), (2, 3, 1))
        p = subprocess.run(["psql", "-X", "-A", "-t", "-F", "|", pg, "-c",
                            "; ".join(PIM_QUERIES)],
                           capture_output=True, text=True, check=True)
        want = ["|".join("" if v is None else str(v) for v in r)
                for r in PIM_COLLS + PIM_ITEMS + [("ceo@example.com", 3)]]
        self.assertEqual(p.stdout.splitlines(), want)
        pg_conf = self.conf_for("pg.conf", pg)
        self.check_copy(self.conf, pg_conf)
        # The change log's position is the source's: a daemon's seq stays valid.
        p = subprocess.run(["psql", "-X", "-A", "-t", pg, "-c", "SELECT max(seq) FROM changes"],
                           capture_output=True, text=True, check=True)
        db = sqlite3.connect(os.path.join(self.dir, "abqd.db"))
        (last,) = db.execute("SELECT max(seq) FROM changes").fetchone()
        db.close()
        self.assertEqual(int(p.stdout.strip()), last + 1)  # + the rule check_copy added
        # And back into a new SQLite file, the same registry (with that rule).
        self.migrate(pg, "sqlite:back.db")
        self.assertEqual(self.folders_sqlite("back.db"), self.folders_sqlite("abqd.db"))
        self.assertEqual(self.pim_sqlite("back.db"), self.pim_sqlite("abqd.db"))
        self.check_copy_back(pg_conf, self.conf_for("back.conf", "sqlite:back.db"))
        self.refused("mobile", "abq", "migrate-store", "sqlite:abqd.db", pg,
                     contains="not empty")

    def check_copy_back(self, src_conf, dst_conf):
        for b, a in zip(self.snapshot_of(src_conf), self.snapshot_of(dst_conf)):
            self.assertEqual(json.loads(b), json.loads(a))


REQUIRE_PG = False

# The folder-id rows MigrateTest copies: a UTF-8 name, a MAILBOXID, a parent.
FOLDERS = [("ceo@example.com", "1", "INBOX", None, 10, None, T0),
           ("ceo@example.com", "2", "Entw\u00fcrfe", "MB-2", 11, None, T0),
           ("ceo@example.com", "4", "Entw\u00fcrfe/\u00c4", None, 12, "2", T0)]
# Native mode's contacts, calendars and tasks (schema v11): collection c2 was
# given and removed (the counter is at 3); c1 has a tombstone, c3 a pruned one.
PIM_COLLS = [("ceo@example.com", "c1", "/dav/addressbooks/ceo/contacts/", 1, "Kontakte", 1,
              "http://sabre.io/ns/sync/12", 3, 0, T0, 2),
             ("ceo@example.com", "c3", "/dav/calendars/ceo/personal/", 2, None, 0, None, 2, 1,
              T0, 2)]
PIM_ITEMS = [("ceo@example.com", "c1", "1", "/dav/addressbooks/ceo/contacts/a.vcf", '"e1"', 1, 1,
              0, 0),
             ("ceo@example.com", "c1", "2", "/dav/addressbooks/ceo/contacts/b.vcf", None, 3, 2,
              0, 0),
             ("ceo@example.com", "c3", "2", "/dav/calendars/ceo/personal/ev.ics", '"x"', 2, 2,
              T0, T0 + 3600)]
PIM_COLL_COLS = ("account, coll_id, href, kind, name, is_default, token, seq, pruned, refreshed, "
                 "last_item")
PIM_ITEM_COLS = "account, coll_id, item_id, href, etag, seq, added_seq, start_at, end_at"
PIM_QUERIES = ("SELECT %s FROM pim_colls ORDER BY account, coll_id" % PIM_COLL_COLS,
               "SELECT %s FROM pim_items ORDER BY account, coll_id, item_id" % PIM_ITEM_COLS,
               "SELECT account, last_id FROM pim_counters ORDER BY account")


def main():
    global ABQCTL, SIMULATE
    ap = argparse.ArgumentParser()
    ap.add_argument("--abqctl", required=True)
    ap.add_argument("--simulate", required=True)
    ap.add_argument("--require-pg", action="store_true")
    args, rest = ap.parse_known_args()
    global REQUIRE_PG
    REQUIRE_PG = args.require_pg
    ABQCTL = os.path.abspath(args.abqctl)
    SIMULATE = os.path.abspath(args.simulate)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
