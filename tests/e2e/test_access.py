#!/usr/bin/env python3
"""End to end, blocked devices, the device limit, authentication and Discovery.

A blocked device refused (Status 129, or 403 at 12.1) even mid-Ping, the device limit
(177), a wrong password leaving no trace, DeviceInformation recorded, Discovery
decided when the facts arrive, IMAP authentication.

Run by CTest as:  python3 test_access.py --abqd PATH --abqctl PATH [--smtpd PATH] [unittest args]
(test_e2e.py runs this suite together with the others on one fixture). The
harness (harness.py) starts the fixture and abqd; see it for what a run does.
"""

import json
import xml.etree.ElementTree as ET
import os
import re
import signal
import socket
import subprocess
import time
import harness as E
from harness import (FOLDERSYNC_0, Phone, TIMINGS, Timer, assert_status_doc, free_ports, held_ping, new_id, settings_xml, sync_xml, text_of, wbxml)


class AccessTests(E.Case):
    maxDiff = None

    def test_04_blocked_device(self):
        phone = Phone(device_id=new_id("blk"))
        phone.folders(self)
        self.admin("mobile", "abq", "block", phone.device_id)

        def blocked():
            r = phone.foldersync()
            return (r.status == 200 and r.body and text_of(r.doc(), "Status") == "129", r)
        _, r = self.until("block seen by abqd", blocked, 2.5, 0.1)
        assert_status_doc(self, r, "FolderSync", 129, "blocked FolderSync at 14.1")
        r = phone.foldersync(version="16.1")
        assert_status_doc(self, r, "FolderSync", 129, "blocked FolderSync at 16.1")
        r = phone.foldersync(version="12.1")
        self.assertEqual(r.status, 403, "blocked FolderSync at 12.1: %r" % r)
        d = self.device_info("alice", phone.device_id)
        self.assertEqual((d["device"]["state"], d["device"]["reason"]), ("Blocked", "Individual"))
        self.assertEqual([(e["deviceId"], e["state"]) for e in d["entries"]],
                         [(phone.device_id, "Blocked")])

    def test_04a_block_ends_a_held_ping(self):
        """product.md: a Ping held by a device that becomes blocked is answered within 2 s."""
        phone = Phone(device_id=new_id("blkping"))
        inbox = phone.inbox(self)
        key = phone.sync0(self, inbox)
        key, _ = phone.sync_changes(self, inbox, key)
        phone.sync_changes(self, inbox, key)
        th, result = held_ping(phone, inbox, 25, timeout=60)
        time.sleep(1.0)
        self.assertTrue(th.is_alive(), "Ping not held: %r" % result)
        t_block = time.monotonic()
        self.admin("mobile", "abq", "block", phone.device_id, "account", "alice")
        th.join(10)
        self.assertFalse(th.is_alive(), "the held Ping is still held 10 s after the block")
        self.assertNotIn("error", result, "Ping failed: %r" % result.get("error"))
        el = result["t"] - t_block
        print("  [time] %-55s %6.2f s" % ("held Ping answered after the block", el))
        TIMINGS.append(("held Ping answered after the block", el))
        self.assertLess(el, 2.5, "the held Ping was answered %.1f s after the block" % el)
        assert_status_doc(self, result["resp"], "Ping", 129, "held Ping of a blocked device")

    def test_04d_wipe_ends_a_held_ping(self):
        """Remote wipe (MS-ASPROV 3.2.5.1.2): the Ping an allowed phone holds ends at
        once with Status 140, its Provision carries RemoteWipe, its confirmation is
        recorded and the device is Blocked (reason Wipe) from then on."""
        phone = Phone(device_id=new_id("wipe"))
        inbox = phone.inbox(self)
        key = phone.sync0(self, inbox)
        key, _ = phone.sync_changes(self, inbox, key)
        th, result = held_ping(phone, inbox, 25, timeout=60)
        time.sleep(1.0)
        self.assertTrue(th.is_alive(), "Ping not held: %r" % result)
        t_wipe = time.monotonic()
        out = self.admin("mobile", "doWipeDevice", "alice", phone.device_id)
        self.assertIn("wipe requested for %s" % phone.device_id, out)
        th.join(10)
        self.assertFalse(th.is_alive(), "the held Ping is still held 10 s after the wipe")
        self.assertNotIn("error", result, "Ping failed: %r" % result.get("error"))
        el = result["t"] - t_wipe
        print("  [time] %-55s %6.2f s" % ("held Ping answered after doWipeDevice", el))
        TIMINGS.append(("held Ping answered after doWipeDevice", el))
        self.assertLess(el, 2.5, "the held Ping was answered %.1f s after the wipe" % el)
        assert_status_doc(self, result["resp"], "Ping", 140, "held Ping of a device to wipe")
        d = self.device_info("alice", phone.device_id)["device"]
        self.assertEqual(d["wipe"]["state"], "requested", d)
        self.assertFalse(d["wipe"]["accountOnly"], d)
        self.assertIsNone(d["wipe"]["acknowledgedAt"], d)
        # Every other command gets the demand, not the mailbox.
        r = phone.foldersync()
        assert_status_doc(self, r, "FolderSync", 140, "FolderSync of a device to wipe")
        r = phone.foldersync(version="12.1")
        self.assertEqual(r.status, 449, "FolderSync at 12.1 of a device to wipe: %r" % r)
        # The empty Provision a phone sends after 140 gets the directive.
        r = phone.post("Provision", wbxml('<Provision xmlns="Provision:"/>'))
        assert_status_doc(self, r, "Provision", 1, "Provision of a device to wipe")
        self.assertIsNotNone(r.doc().find("RemoteWipe"), ET.tostring(r.doc()))
        # A failure keeps the wipe pending and repeats the directive.
        r = phone.post("Provision", wbxml(
            '<Provision xmlns="Provision:"><RemoteWipe><Status>2</Status></RemoteWipe></Provision>'))
        assert_status_doc(self, r, "Provision", 2, "a failed wipe")
        self.assertIsNotNone(r.doc().find("RemoteWipe"), ET.tostring(r.doc()))
        self.assertEqual(self.device_info("alice", phone.device_id)["device"]["wipe"]["state"],
                         "requested")
        r = phone.post("Provision", wbxml(
            '<Provision xmlns="Provision:"><RemoteWipe><Status>1</Status></RemoteWipe></Provision>'))
        assert_status_doc(self, r, "Provision", 1, "the wipe confirmed")
        self.assertIsNone(r.doc().find("RemoteWipe"), ET.tostring(r.doc()))
        d = self.device_info("alice", phone.device_id)["device"]
        self.assertEqual(d["wipe"]["state"], "acknowledged", d)
        self.assertIsNotNone(d["wipe"]["acknowledgedAt"], d)
        self.assertEqual((d["state"], d["reason"]), ("Blocked", "Wipe"), d)
        r = phone.foldersync()
        assert_status_doc(self, r, "FolderSync", 129, "FolderSync of a wiped device")
        # Confirmed: it cannot be withdrawn; an allow entry does not bring it back.
        p = E.H.ctl("mobile", "doAbortWipe", "alice", phone.device_id)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("cannot be aborted", p.stderr)
        self.admin("mobile", "abq", "allow", phone.device_id, "account", "alice")
        time.sleep(1.5)
        r = phone.foldersync()
        assert_status_doc(self, r, "FolderSync", 129, "FolderSync of a wiped, allowed device")
        hist = E.H.ctl_json(self, "mobile", "abq", "history", phone.device_id, "account",
                            "alice")["history"]
        wipes = [(h["old"], h["new"]) for h in hist if h["what"] == "wipe"]
        self.assertIn((None, "requested"), wipes, hist)
        self.assertIn(("requested", "acknowledged"), wipes, hist)
        # Deleted by an administrator: a new device again.
        self.admin("mobile", "abq", "delete", phone.device_id, "account", "alice")
        time.sleep(1.5)
        r = phone.foldersync()
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(text_of(r.doc(), "Status"), "129", ET.tostring(r.doc()))

    def test_04e_wipe_withdrawn_and_account_only(self):
        """doAbortWipe before the phone confirms lets it sync again; accountOnly is
        refused below 16.1 and said as AccountOnlyRemoteWipe at 16.1."""
        phone = Phone(device_id=new_id("wipeab"), version="12.1")
        phone.folders(self)
        p = E.H.ctl("mobile", "doWipeDevice", "alice", phone.device_id, "accountOnly")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("needs 16.1", p.stderr)
        p = E.H.ctl("mobile", "doWipeDevice", "alice", "nosuchdevice")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("no device nosuchdevice", p.stderr)
        out = self.admin("--dry-run", "mobile", "doWipeDevice", "alice", phone.device_id)
        self.assertIn("would ask for a wipe", out)
        self.assertIsNone(self.device_info("alice", phone.device_id)["device"]["wipe"])
        self.admin("mobile", "doWipeDevice", "alice", phone.device_id)

        def demanded():
            r = phone.foldersync()
            return (r.status == 449, r)
        self.until("wipe seen by abqd", demanded, 2.5, 0.1)
        self.admin("mobile", "doAbortWipe", "alice", phone.device_id)
        self.assertIsNone(self.device_info("alice", phone.device_id)["device"]["wipe"])

        def synced():
            r = phone.foldersync()
            return (r.status == 200, r)
        self.until("withdrawn wipe seen by abqd", synced, 2.5, 0.1)
        p = E.H.ctl("mobile", "doAbortWipe", "alice", phone.device_id)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("no wipe was asked", p.stderr)

        new = Phone(device_id=new_id("wipeacct"), version="16.1")
        new.folders(self)
        self.admin("mobile", "doWipeDevice", "alice", new.device_id, "accountOnly")
        self.assertTrue(self.device_info("alice", new.device_id)["device"]["wipe"]["accountOnly"])

        def directive():
            # libwbxml predates 16.1 and decodes AccountOnlyRemoteWipe (Provision page
            # token 0x3B, MS-ASWBXML) as <unknown/>: the token itself is checked.
            r = new.post("Provision", wbxml('<Provision xmlns="Provision:"/>'))
            ok = (r.status == 200 and text_of(r.doc(), "Status") == "1"
                  and r.doc().find("RemoteWipe") is None and r.body.endswith(b"\x01\x3b\x01"))
            return (ok, r)
        self.until("account-only wipe served", directive, 2.5, 0.1)
        # <Provision><AccountOnlyRemoteWipe><Status>1</Status></...></Provision>, encoded
        # by hand for the same reason (xml2wbxml cannot encode the element).
        r = new.post("Provision", b"\x03\x01\x6a\x00\x00\x0e\x45\x7b\x4b\x031\x00\x01\x01\x01")
        assert_status_doc(self, r, "Provision", 1, "the account-only wipe confirmed")
        d = self.device_info("alice", new.device_id)["device"]
        self.assertEqual((d["state"], d["reason"], d["wipe"]["state"]),
                         ("Blocked", "Wipe", "acknowledged"), d)
        self.restore.append(("mobile", "abq", "delete", new.device_id, "account", "alice"))

    def provision(self, phone, what, status="1"):
        """Both phases of Provision (MS-ASPROV 3.1.5.1) as a phone runs them, phase 2
        acknowledging the policy with `status`; the phone keeps the final key.
        Returns the EASProvisionDoc of phase 1."""
        ptype = "<PolicyType>MS-EAS-Provisioning-WBXML</PolicyType>"
        phone.policy_key = "0"
        r = phone.post("Provision", wbxml('<Provision xmlns="Provision:"><Policies><Policy>%s'
                                          '</Policy></Policies></Provision>' % ptype))
        assert_status_doc(self, r, "Provision", 1, what + ": phase 1")
        doc = r.doc()
        self.assertEqual(text_of(doc, "Policies/Policy/Status"), "1", ET.tostring(doc))
        temp = text_of(doc, "Policies/Policy/PolicyKey")
        self.assertNotIn(temp, (None, "", "0"), ET.tostring(doc))
        policy = doc.find("Policies/Policy/Data/EASProvisionDoc")
        self.assertIsNotNone(policy, ET.tostring(doc))
        phone.policy_key = temp
        r = phone.post("Provision", wbxml(
            '<Provision xmlns="Provision:"><Policies><Policy>%s<PolicyKey>%s</PolicyKey>'
            '<Status>%s</Status></Policy></Policies></Provision>' % (ptype, temp, status)))
        assert_status_doc(self, r, "Provision", 1, what + ": phase 2")
        final = text_of(r.doc(), "Policies/Policy/PolicyKey")
        self.assertNotIn(final, (None, "", "0", temp), ET.tostring(r.doc()))
        phone.policy_key = final
        return policy

    def policy_served(self, phone, key, value):
        """Phase 1 of Provision alone: (True, answer) once the policy abqd hands
        `phone` says `value` for `key`. Two abqctl changes are two store
        transactions: the gateway may serve the policy between them, so a test
        that set several keys waits for the last of them here."""
        phone.policy_key = "0"
        r = phone.post("Provision", wbxml(
            '<Provision xmlns="Provision:"><Policies><Policy><PolicyType>'
            'MS-EAS-Provisioning-WBXML</PolicyType></Policy></Policies></Provision>'))
        if r.status != 200:
            return (False, r)
        doc = r.doc()
        return (text_of(doc, "Policies/Policy/Data/EASProvisionDoc/" + key) == value, r)

    def test_04f_provisioning_policy(self):
        """A domain's policy requiring a 6-digit PIN: a 16.1 and a 12.1 phone are asked
        to provision (142 / 449), get the policy from abqd, sync with their key; a
        changed policy makes them provision again (144); without a policy the keys
        do not matter."""
        words = ("mobile", "setProvisioning", "domain", "example.test")
        self.restore.append(("mobile", "unsetProvisioning", "domain", "example.test",
                             "DevicePasswordEnabled"))
        self.restore.append(("mobile", "unsetProvisioning", "domain", "example.test",
                             "MinDevicePasswordLength"))
        new = Phone(device_id=new_id("pol16"), version="16.1")
        old = Phone(device_id=new_id("pol12"), version="12.1")
        for p in (new, old):
            p.folders(self)  # known and Allowed before the policy
        self.admin(*words, "DevicePasswordEnabled", "1")
        self.admin(*words, "MinDevicePasswordLength", "6")

        def demanded():
            r = new.foldersync()
            return (r.status == 200 and text_of(r.doc(), "Status") == "142", r)
        self.until("policy demanded of a known phone", demanded, 2.5, 0.1)
        self.until("the whole policy served", lambda: self.policy_served(
            new, "MinDevicePasswordLength", "6"), 2.5, 0.1)
        r = old.foldersync()
        self.assertEqual(r.status, 449, "12.1 phone without its key: %r" % r)
        for p, v in ((new, "16.1"), (old, "12.1")):
            doc = self.provision(p, "Provision at " + v)
            self.assertEqual(text_of(doc, "DevicePasswordEnabled"), "1", ET.tostring(doc))
            self.assertEqual(text_of(doc, "MinDevicePasswordLength"), "6", ET.tostring(doc))
            r = p.foldersync()
            assert_status_doc(self, r, "FolderSync", 1, "FolderSync at %s with its key" % v)
        first = new.policy_key
        # The policy changes: the old key is refused, Provision hands out the new one.
        self.admin(*words, "MinDevicePasswordLength", "8")

        def refused():
            r = new.foldersync()
            return (r.status == 200 and text_of(r.doc(), "Status") == "144", r)
        self.until("changed policy demanded again", refused, 2.5, 0.1)
        self.assertEqual(old.foldersync().status, 449)
        doc = self.provision(new, "Provision of the changed policy")
        self.assertEqual(text_of(doc, "MinDevicePasswordLength"), "8", ET.tostring(doc))
        self.assertNotEqual(new.policy_key, first)
        assert_status_doc(self, new.foldersync(), "FolderSync", 1, "FolderSync with the new key")
        # Without a policy no key is asked.
        for words_ in self.restore[::-1]:
            self.admin(*words_)
        self.restore = []

        def free():
            r = old.foldersync()
            return (r.status == 200, r)
        self.until("policy removed", free, 2.5, 0.1)

    def test_04f_non_provisionable(self):
        """AllowNonProvisionableDevices 0 with a policy that imposes something: a phone
        that acknowledges it with Status 2 (partially applied) gets its key, then 129
        at its next request (Blocked, reason Policy, in history); the key back at 1
        lets it sync again once it has provisioned; a phone that applies the policy
        is not touched."""
        words = ("mobile", "setProvisioning", "domain", "example.test")
        for key in ("DevicePasswordEnabled", "AllowNonProvisionableDevices"):
            self.restore.append(("mobile", "unsetProvisioning", "domain", "example.test",
                                 key))
        partial = Phone(device_id=new_id("nonp"), version="16.1")
        applied = Phone(device_id=new_id("appl"), version="14.1")
        for p in (partial, applied):
            self.restore.append(("mobile", "abq", "delete", p.device_id, "account", "alice"))
            p.folders(self)  # known and Allowed before the policy
        # This order: AllowNonProvisionableDevices alone imposes nothing, so the
        # demand below is seen only with both keys (two abqctl changes are two
        # store transactions; the gateway may serve what lies between them).
        self.admin(*words, "AllowNonProvisionableDevices", "0")
        self.admin(*words, "DevicePasswordEnabled", "1")

        def demanded():
            r = partial.foldersync()
            return (r.status == 200 and text_of(r.doc(), "Status") == "142", r)
        self.until("policy demanded of a known phone", demanded, 2.5, 0.1)
        self.provision(applied, "Provision applied")
        assert_status_doc(self, applied.foldersync(), "FolderSync", 1,
                          "FolderSync of a phone that applied its policy")
        self.provision(partial, "Provision partially applied", status="2")
        # Its very next request: the decision reached the gateway with the answer.
        assert_status_doc(self, partial.foldersync(), "FolderSync", 129,
                          "FolderSync of a phone that does not provision")
        d = self.device_info("alice", partial.device_id)["device"]
        self.assertEqual((d["state"], d["reason"], d["provisionStatus"]),
                         ("Blocked", "Policy", 2), d)
        self.assertEqual(self.device_info("alice", applied.device_id)["device"]["state"],
                         "Allowed")
        hist = E.H.ctl_json(self, "mobile", "abq", "history", partial.device_id, "account",
                            "alice")["history"]
        rows = [(h["what"], h["old"], h["new"]) for h in hist]
        self.assertIn(("provision", None, "2 (partially applied)"), rows, hist)
        self.assertIn(("state", "Allowed (Mode)", "Blocked (Policy)"), rows, hist)
        out = self.admin("mobile", "abq", "explain", partial.device_id, "account", "alice")
        self.assertIn("AllowNonProvisionableDevices is 0", out)
        # The key back at 1: decided again, Allowed; it provisions with the new policy
        # version and syncs.
        self.admin(*words, "AllowNonProvisionableDevices", "1")
        d = self.device_info("alice", partial.device_id)["device"]
        self.assertEqual((d["state"], d["reason"]), ("Allowed", "Mode"), d)

        def provisioned_again():
            r = partial.foldersync()
            if r.status == 200 and text_of(r.doc(), "Status") == "144":
                self.provision(partial, "Provision again", status="2")
                r = partial.foldersync()
            return (r.status == 200 and text_of(r.doc(), "Status") == "1", r)
        self.until("the phone syncs again", provisioned_again, 2.5, 0.1)

    def test_04g_account_logger(self):
        """doAddAccountLogger: one phone's FolderSync and Sync decoded into FILE, without
        its password or the mail bodies; another account's requests absent; nothing
        written after doRemoveLogger."""
        phone = Phone(device_id=new_id("logd"))
        other = Phone(device_id=new_id("logb"), user="bob")
        path = os.path.join(E.H.work, "logger-%s.log" % phone.device_id)
        out = self.admin("mobile", "doAddAccountLogger", "alice", "device", phone.device_id,
                         "until", "10m", path)
        lid = re.search(r"^logger (\d+):", out).group(1)
        self.until("the logger's file opened by abqd", lambda: (os.path.exists(path), None), 5)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        inbox = phone.inbox(self)
        key = phone.sync0(self, inbox)
        key, subjects = phone.sync_changes(self, inbox, key)
        self.assertIn("Welcome to the fixture", subjects)
        other.inbox(self)
        Phone(device_id=new_id("logo")).folders(self)  # alice, but another device
        text = open(path, encoding="utf-8").read()
        heads = [l for l in text.splitlines() if l.startswith("== ")]
        cmds = [re.search(r" cmd=(\S+)", h).group(1) for h in heads]
        self.assertIn("FolderSync", cmds, text[:2000])
        self.assertIn("Sync", cmds, text[:2000])
        for h in heads:
            self.assertRegex(h, r"^== \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ addr=\S+ user=alice@\S+ "
                             r"dev=%s cmd=\S+ ver=14\.1 status=200 outcome=proxied ms=\d+$"
                             % re.escape(phone.device_id))
        # The requests and the upstream's answers, decoded.
        self.assertIn('<FolderSync xmlns="FolderHierarchy:">', text)
        self.assertIn("<DisplayName>INBOX</DisplayName>", text)
        self.assertIn('<Sync xmlns="AirSync:">', text)
        self.assertIn("Welcome to the fixture", text)
        self.assertIn("bytes left out]</Data>", text)
        # No credentials, no mail body, nobody else.
        for absent in ("Hello Alice, this Inbox belongs", "Same place as last time",
                       "secret", "YWxpY2U6c2VjcmV0", "Authorization", "user=bob",
                       other.device_id):
            self.assertNotIn(absent, text)
        # Removed: the daemon hears of it through the change log, then writes nothing.
        self.assertIn("removed 1 logger", self.admin("mobile", "doRemoveLogger", lid))
        self.until("the logger's removal seen by abqd",
                   lambda: (re.search(r"logger %s for alice@\S+ removed" % lid,
                                      E.H.log_text()) is not None, None), 5)
        size = os.path.getsize(path)
        self.assertEqual(phone.post("Sync", wbxml(sync_xml(inbox, key, True))).status, 200)
        self.assertEqual(phone.foldersync().status, 200)
        self.assertEqual(os.path.getsize(path), size, "written after doRemoveLogger")
        self.assertEqual(self.admin("mobile", "getAccountLoggers"), "no logger\n")

    def test_04b_device_limit(self):
        first = Phone(device_id=new_id("lim1"), user="bob")
        first.folders(self)
        self.admin("config", "global", "set", "attribute", "abqMaxDevicesPerAccount", "value", "1")
        self.restore.append(("config", "global", "delete", "attribute", "abqMaxDevicesPerAccount"))
        second = Phone(device_id=new_id("lim2"), user="bob")
        r = second.foldersync()
        assert_status_doc(self, r, "FolderSync", 177, "second device beyond the limit")
        d = self.device_info("bob", second.device_id)["device"]
        self.assertEqual((d["state"], d["reason"]), ("Blocked", "Limit"))

    def test_07_wrong_password_leaves_no_trace(self):
        phone = Phone(device_id=new_id("badpw"))
        r = phone.post("FolderSync", FOLDERSYNC_0, password="not-the-password")
        self.assertEqual(r.status, 401, "wrong password: %r" % r)
        self.assertRegex(r.headers.get("www-authenticate", ""), r"^Basic( |$)")
        r = phone.post("FolderSync", FOLDERSYNC_0, auth=False)
        self.assertEqual(r.status, 401, "no credentials: %r" % r)
        self.assertRegex(r.headers.get("www-authenticate", ""), r"^Basic( |$)")
        devs = E.H.ctl_json(self, "mobile", "getAllDevices")["devices"]
        self.assertTrue(devs, "getAllDevices lists nothing at all (other tests made devices)")
        self.assertEqual([d for d in devs if d["deviceId"].lower() == phone.device_id.lower()],
                         [])
        hist = E.H.ctl_json(self, "mobile", "abq", "history")["history"]
        self.assertEqual([e for e in hist if phone.device_id.lower() in json.dumps(e).lower()], [])

    def test_08_settings_device_information(self):
        phone = Phone(device_id=new_id("info"), user_agent="abqd-e2e-header/2.0")
        info = {"Model": "Pixel 8 Pro", "IMEI": "356938035643809", "FriendlyName": "Alice's phone",
                "OS": "Android 14.0.0", "OSLanguage": "English", "UserAgent": "Android-Mail/2024.11"}
        r = phone.post("Settings", wbxml(settings_xml(info)))
        self.assertEqual(r.status, 200, "Settings: %r" % r)
        doc = r.doc()
        self.assertEqual(doc.tag, "Settings")
        d = self.device_info("alice", phone.device_id)["device"]
        got = {"Model": d["model"], "IMEI": d["imei"], "FriendlyName": d["friendlyName"],
               "OS": d["os"], "OSLanguage": d["osLanguage"], "UserAgent": d["userAgent"]}
        self.assertEqual(got, info)
        self.assertEqual(d["lastCommand"], "Settings")

    def test_08b_discovery(self):
        """A rule on the model: a new phone that has not said its model is in
        Discovery and sees the mailbox's neutral alert; its Settings decide it."""
        self.admin("mobile", "abq", "setRule", "SM-*", "Blocked", "10", "characteristic",
                   "DeviceModel", "match", "glob")
        self.restore.append(("mobile", "abq", "deleteRule", "SM-*"))
        time.sleep(1.2)
        samsung = Phone(device_id=new_id("disc"), user="bob", device_type="Android")
        _, _, subjects = self.mailbox_inbox(samsung)
        self.assertRegex(subjects[0], r"(?i)checking", subjects)
        d = self.device_info("bob", samsung.device_id)["device"]
        self.assertEqual(d["state"], "Discovery")
        r = samsung.post("Settings", wbxml(settings_xml({"Model": "SM-S918B", "OS": "Android 14"})))
        assert_status_doc(self, r, "Settings", 129, "Settings that reveal a blocked model")
        d = self.device_info("bob", samsung.device_id)["device"]
        self.assertEqual((d["state"], d["reason"], d["model"]), ("Blocked", "Rule", "SM-S918B"))
        pixel = Phone(device_id=new_id("disc2"), user="bob", device_type="Android")
        pcoll, pkey, _ = self.mailbox_inbox(pixel)
        r = pixel.post("Settings", wbxml(settings_xml({"Model": "Pixel 8", "OS": "Android 14"})))
        self.assertEqual(r.status, 200, "Settings of an allowed model: %r" % r)
        d = self.device_info("bob", pixel.device_id)["device"]
        self.assertEqual((d["state"], d["reason"]), ("Allowed", "Mode"))
        # Its mailbox keys now get "start over", then the real folders.
        r = pixel.post("Sync", wbxml(sync_xml(pcoll, pkey, True)))
        self.assertEqual(text_of(r.doc(), ".//Status"), "3", "mailbox key after the decision: %r" % r)
        self.assertFalse(any(f[0].startswith("abq-") for f in pixel.folders(self)))

    def test_13_imap_authentication(self):
        """[auth] method = imap://: a second abqd checks passwords against the
        fixture's real Dovecot: a good one syncs, a wrong one gets 401 and leaves
        no trace."""
        work = os.path.join(E.H.work, "imap-abqd")
        os.makedirs(work, exist_ok=True)
        (port, admin_port) = free_ports(2)
        conf = os.path.join(work, "abqd.conf")
        with open(conf, "w") as f:
            f.write("[eas]\nlisten = 127.0.0.1:%d\nworkers = 1\ndefault_domain = example.test\n"
                    "[upstream]\nurl = %s\n[auth]\nmethod = imap://127.0.0.1:%d\n"
                    "[store]\nurl = sqlite:abqd.db\n[admin]\nlisten = 127.0.0.1:%d\n"
                    "[log]\nlevel = debug\n"
                    % (port, E.H.fixture_url, E.H.imap_port, admin_port))
        logf = open(os.path.join(work, "abqd.stderr"), "ab")
        p = subprocess.Popen([E.ABQD, "-d", "-c", conf], stdout=logf, stderr=subprocess.STDOUT,
                             cwd=work)
        logf.close()
        def accepts():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return (True,)
            except OSError as e:
                return (False, str(e))

        try:
            self.until("the IMAP-auth abqd accepts", accepts, 20)
            good = Phone(device_id=new_id("imap"), user="bob")
            good.port = port
            self.assertIn("2", [f[3] for f in good.folders(self)])
            bad = Phone(device_id=new_id("imapbad"), user="bob", password="wrong")
            bad.port = port
            with Timer("IMAP login refused (Dovecot delays failures)"):
                r = bad.foldersync()
            self.assertEqual(r.status, 401, "wrong password via IMAP: %r" % r)
            self.assertIn("basic", r.headers.get("www-authenticate", "").lower())
            out = subprocess.run([E.ABQCTL, "-c", conf, "mobile", "getAllDevices", "--json"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            ids = [d["deviceId"] for d in json.loads(out.stdout)["devices"]]
            self.assertIn(good.device_id.upper(), [i.upper() for i in ids])
            self.assertNotIn(bad.device_id.upper(), [i.upper() for i in ids])
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main():
    E.run_suite("e2e_access", E.Harness(), tests=AccessTests)


if __name__ == "__main__":
    main()
