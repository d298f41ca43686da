#!/usr/bin/env python3
"""End to end, notices by mail through a real relay (OpenSMTPD).

The user's mail, the administrators' digest and immediate notices, a domain
template in the phone's language, the relay down then up, SIGKILL with queued notices.

Run by CTest as:  python3 test_notices.py --abqd PATH --abqctl PATH [--smtpd PATH] [unittest args]
(test_e2e.py runs this suite together with the others on one fixture). The
harness (harness.py) starts the fixture and abqd; see it for what a run does.
"""

import json
import os
import socket
import subprocess
import time
import harness as E
from harness import (Phone, maildir_messages, new_id, relay_config, settings_xml, stop_process, wbxml)


class NoticeTests(E.Case):
    maxDiff = None

    def test_17_user_notices_by_mail(self):
        """A real OpenSMTPD on loopback (as tests/notice/test_notice_smtp.py runs
        it) and a side abqd with [smtp] from: alice's new device in Interactive
        mode brings alice@example.test the quarantine mail naming the device;
        abqctl block brings the blocked mail; the outbox shows both sent."""
        if not os.path.exists(E.SMTPD) or os.geteuid() != 0:
            self.fail("needs root and OpenSMTPD at %s (scripts/install-deps.sh)" % E.SMTPD)
        work = os.path.join(E.H.work, "notice-relay")
        smtp_port, maildir, smtpd_conf = relay_config(work)
        relay_log = open(os.path.join(work, "smtpd.log"), "ab")
        relay = subprocess.Popen([E.SMTPD, "-d", "-f", smtpd_conf], stdout=relay_log,
                                 stderr=subprocess.STDOUT)
        relay_log.close()

        def messages():
            return maildir_messages(maildir)

        def relay_up():
            try:
                socket.create_connection(("127.0.0.1", smtp_port), timeout=0.2).close()
                return (True,)
            except OSError as e:
                return (False, str(e))

        p = None
        try:
            self.until("smtpd listens", relay_up, 20)
            p, port, conf = self.side_abqd(
                "notice-abqd", "[smtp]\nurl = smtp://127.0.0.1:%d\nfrom = abq@example.test\n"
                % smtp_port)

            def ctl(*words):
                r = subprocess.run([E.ABQCTL, "-c", conf] + list(words), capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(r.returncode, 0, "abqctl %s: %s" % (" ".join(words), r.stderr))
                return r.stdout
            ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            phone = Phone(device_id=new_id("mail"), user="alice", device_type="NoticePhone")
            phone.port = port
            info = {"Model": "Pixel Notice", "OS": "Android 15", "OSLanguage": "en-US"}
            r = phone.post("Settings", wbxml(settings_xml(info)))
            self.assertEqual(r.status, 200, "Settings: %r" % r)

            def subjects():
                m = messages()
                return (len(m) >= 1, [x["Subject"] for x in m])
            self.until("the quarantine mail arrives", subjects, 15)
            msgs = messages()
            self.assertEqual(len(msgs), 1, [m["Subject"] for m in msgs])
            m = msgs[0]
            self.assertEqual(m["To"], "alice@example.test")
            self.assertIn("abq@example.test", m["From"])
            self.assertEqual(m["Auto-Submitted"], "auto-generated")
            self.assertIn(phone.device_id, m["Subject"])
            plain = m.get_body(("plain",)).get_content()
            for fact in ("Pixel Notice", "NoticePhone", phone.device_id, "Android 15",
                         "Quarantined"):
                self.assertIn(fact, plain)

            ctl("mobile", "abq", "block", phone.device_id, "account", "alice")

            def two():
                m = messages()
                return (len(m) >= 2, [x["Subject"] for x in m])
            self.until("the blocked mail arrives", two, 15)
            time.sleep(1.5)  # nothing more comes
            msgs = messages()
            self.assertEqual(len(msgs), 2, [m["Subject"] for m in msgs])
            blocked = [m for m in msgs if "blocked" in m["Subject"]]
            self.assertEqual(len(blocked), 1, [m["Subject"] for m in msgs])
            self.assertIn("Pixel Notice", blocked[0].get_body(("plain",)).get_content())

            def all_sent():
                doc = json.loads(ctl("mobile", "abq", "outbox", "--json"))
                n = doc["notices"]
                return (len(n) == 2 and all(x["state"] == "sent" for x in n), n)
            _, notices = self.until("the outbox shows both sent", all_sent, 10)
            self.assertEqual([(x["kind"], x["recipient"], x["deviceId"]) for x in notices],
                             [("user-quarantined", "alice@example.test", phone.device_id),
                              ("user-blocked", "alice@example.test", phone.device_id)])
        finally:
            if p is not None:
                self.assertEqual(self.stop_side(p), 0, "the notice abqd's exit status")
            stop_process(relay)

    def test_18_admin_digest(self):
        """[smtp] admins = it@example.test, abqNotificationsInterval 5s: two new
        devices quarantined bring one digest naming both with the abqctl lines;
        the next interval with nothing new brings no second digest."""
        r = self.notice_rig("digest", "admins = it@example.test\n")
        try:
            r.relay_start()
            r.abqd()
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            ids = [new_id("dig1"), new_id("dig2")]
            for i in ids:
                r.quarantine(i)
            # After both (the default 1h interval holds them): the sender sees the
            # change within a scan and the first digest covers both.
            r.ctl("mobile", "abq", "setNotificationInterval", "5s")

            def digests():
                m = [x for x in r.messages() if x["To"] == "it@example.test"]
                return (len(m) >= 1, [x["Subject"] for x in m])
            self.until("the digest arrives", digests, 20)
            time.sleep(1)
            dig = [x for x in r.messages() if x["To"] == "it@example.test"]
            self.assertEqual(len(dig), 1, [x["Subject"] for x in dig])
            plain = dig[0].get_body(("plain",)).get_content()
            for i in ids:
                self.assertIn("abqctl mobile abq allow %s account alice" % i, plain)
                self.assertIn("abqctl mobile abq block %s account alice" % i, plain)
                self.assertIn("Pixel " + i, plain)
            self.assertEqual(dig[0]["Auto-Submitted"], "auto-generated")
            # Two more intervals with nothing new: no second digest.
            time.sleep(12)
            dig = [x for x in r.messages() if x["To"] == "it@example.test"]
            self.assertEqual(len(dig), 1, [x["Subject"] for x in dig])
            users = [x for x in r.messages() if x["To"] == "alice@example.test"]
            self.assertEqual(len(users), 2, [x["Subject"] for x in users])
        finally:
            r.close()

    def test_21_admins_told_immediately(self):
        """abqNotifyAdminsImmediately: a quarantine also mails each administrator
        (a domain's abqAdmins overrides [smtp] admins)."""
        r = self.notice_rig("immediate", "admins = it@example.test\n")
        try:
            r.relay_start()
            r.abqd()
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            r.ctl("config", "global", "set", "attribute", "abqNotifyAdminsImmediately",
                  "value", "TRUE")
            dev = new_id("imm")
            r.quarantine(dev)

            def told():
                m = [x for x in r.messages() if x["To"] == "it@example.test"]
                return (len(m) >= 1, [x["Subject"] for x in m])
            self.until("the administrators' immediate mail", told, 20)
            m = [x for x in r.messages() if x["To"] == "it@example.test"]
            self.assertEqual(len(m), 1, [x["Subject"] for x in m])
            self.assertIn(dev, m[0]["Subject"] + m[0].get_body(("plain",)).get_content())
            # A domain's own administrators replace [smtp] admins.
            r.ctl("config", "domain", "example.test", "set", "attribute", "abqAdmins", "value",
                  "sec@example.test")
            dev2 = new_id("imm2")
            r.quarantine(dev2)

            def sec_told():
                m2 = [x for x in r.messages() if x["To"] == "sec@example.test"]
                return (len(m2) >= 1, [x["Subject"] for x in m2])
            self.until("the domain administrators' mail", sec_told, 20)
            self.assertEqual(len([x for x in r.messages() if x["To"] == "it@example.test"]), 1)
        finally:
            r.close()

    def test_22_domain_template_in_the_phones_language(self):
        """A domain's German template is chosen for a phone whose OSLanguage is
        de-DE; an English phone of the same domain gets the built-in text."""
        r = self.notice_rig("locale")
        try:
            r.relay_start()
            r.abqd()
            body = os.path.join(E.H.work, "locale-body.txt")
            with open(body, "w") as f:
                f.write("Ihr Gerät {model} ({device_id}) wartet auf Freigabe.\n")
            r.ctl("mobile", "abq", "setABQMessage", "domain", "example.test", "quarantined",
                  "de", "subject", "Gerät {device_id} in Quarantäne", "body_plain_file", body)
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            german = Phone(device_id=new_id("de"), user="alice", device_type="Android")
            german.port = r.port
            resp = german.post("Settings", wbxml(settings_xml(
                {"Model": "Pixel 9", "OS": "Android 15", "OSLanguage": "de-DE"})))
            self.assertEqual(resp.status, 200, resp)
            english = Phone(device_id=new_id("en"), user="alice", device_type="Android")
            english.port = r.port
            english.post("Settings", wbxml(settings_xml(
                {"Model": "Pixel 9", "OS": "Android 15", "OSLanguage": "en-US"})))

            def both():
                m = [x for x in r.messages() if x["To"] == "alice@example.test"]
                return (len(m) >= 2, [x["Subject"] for x in m])
            self.until("both quarantine mails", both, 20)
            by_subject = {x["Subject"]: x for x in r.messages()}
            de = [x for k, x in by_subject.items() if german.device_id in k]
            self.assertEqual(len(de), 1, list(by_subject))
            self.assertIn("Quarantäne", de[0]["Subject"])
            self.assertIn("Ihr Gerät Pixel 9 (%s)" % german.device_id,
                          de[0].get_body(("plain",)).get_content())
            en = [x for k, x in by_subject.items() if english.device_id in k
                  or english.device_id in x.get_body(("plain",)).get_content()]
            self.assertEqual(len(en), 1, list(by_subject))
            self.assertNotIn("Quarantäne", en[0]["Subject"])
            # The quarantine mailbox's alert speaks the same language as the mail.
            _, _, alert = self.mailbox_inbox(german)
            self.assertIn("Quarantäne", alert[0])
            _, _, alert = self.mailbox_inbox(english)
            self.assertNotIn("Quarantäne", alert[0])
        finally:
            r.close()

    def test_19_relay_down_then_up(self):
        """The relay stopped while a device is quarantined, then started: the
        user's mail is delivered exactly once."""
        r = self.notice_rig("relaydown")
        try:
            r.relay_start()
            r.abqd()
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            r.ctl("mobile", "abq", "setNotificationInterval", "0")
            r.relay_stop()
            dev = new_id("down")
            r.quarantine(dev)

            def failed_once():
                n = json.loads(r.ctl("mobile", "abq", "outbox", "--json"))["notices"]
                return (len(n) == 1 and n[0]["attempts"] >= 1, n)
            self.until("an attempt fails with the relay down", failed_once, 15)
            self.assertEqual(r.messages(), [])
            r.relay_start()

            def delivered():
                m = r.messages()
                return (len(m) >= 1, [x["Subject"] for x in m])
            self.until("the mail arrives after the relay is back", delivered, 60)
            time.sleep(3)
            msgs = r.messages()
            self.assert_once(msgs, 1)
            self.assertIn(dev, msgs[0]["Subject"])
        finally:
            r.close()

    def test_20_sigkill_with_queued_notices(self):
        """abqd killed with SIGKILL while notices wait (relay down), restarted,
        relay up: every notice delivered exactly once."""
        r = self.notice_rig("sigkill")
        try:
            r.relay_start()
            r.abqd()
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            r.ctl("mobile", "abq", "setNotificationInterval", "0")
            r.relay_stop()
            devs = [new_id("kill1"), new_id("kill2")]
            for d in devs:
                r.quarantine(d)
            r.ctl("mobile", "abq", "block", devs[0], "account", "alice")

            def queued():
                n = json.loads(r.ctl("mobile", "abq", "outbox", "--json"))["notices"]
                return (len(n) == 3 and all(x["state"] == "queued" for x in n), n)
            self.until("three notices queued", queued, 15)
            r.kill_abqd()
            r.abqd()
            r.relay_start()

            def delivered():
                m = r.messages()
                return (len(m) >= 3, [x["Subject"] for x in m])
            self.until("every notice delivered after the restart", delivered, 60)
            time.sleep(3)
            msgs = r.messages()
            self.assert_once(msgs, 3)

            def all_sent():
                n = json.loads(r.ctl("mobile", "abq", "outbox", "--json"))["notices"]
                return (len(n) == 3 and all(x["state"] == "sent" for x in n), n)
            self.until("the outbox shows all sent", all_sent, 10)
        finally:
            r.close()


def main():
    E.run_suite("e2e_notices", E.Harness(), tests=NoticeTests)


if __name__ == "__main__":
    main()
