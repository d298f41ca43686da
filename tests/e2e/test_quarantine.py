#!/usr/bin/env python3
"""End to end, the quarantine mailbox, as a quarantined phone sees it.

The product story (an iPhone allowed, an Android blocked while both hold a Ping),
the handover to the real folders without FolderSync 9, a hanging Sync held and
ended by an allow, a retried Sync key and a repeated FolderSync key, a restart
between FolderSync and Sync.

Run by CTest as:  python3 test_quarantine.py --abqd PATH --abqctl PATH [--smtpd PATH] [unittest args]
(test_e2e.py runs this suite together with the others on one fixture). The
harness (harness.py) starts the fixture and abqd; see it for what a run does.
"""

import threading
import time
import harness as E
from harness import (ALICE_SEEDED, Phone, TIMINGS, Timer, assert_status_doc, folder_changes, foldersync_xml, hanging_sync_xml, new_id, sync_xml, text_of, wbxml)


class QuarantineTests(E.Case):
    maxDiff = None

    def test_05_the_story(self):
        """issue 4: Interactive; an iPhone (16.1) and an Android (14.1) land in the
        quarantine mailbox; allow one, block the other while both hold a Ping."""
        self.admin("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
        self.restore.append(("config", "global", "set", "attribute", "abqMode", "value",
                             "Permissive"))
        iphone = Phone(device_id=new_id("ceoiphone"), user="alice", version="16.1",
                       device_type="iPhone")
        android = Phone(device_id=new_id("mgrandroid"), user="bob", version="14.1",
                        device_type="Android")
        boxes = {}
        for ph in (iphone, android):
            coll, key, subjects = self.mailbox_inbox(ph)
            self.assertRegex(subjects[0], r"(?i)has been put in quarantine", subjects)
            doc = E.H.ctl_json(self, "mobile", "abq", "list", "status", "Quarantined")
            self.assertIn(ph.device_id.upper(), [d["deviceId"].upper() for d in doc["devices"]])
            boxes[ph.device_id] = (coll, key)
        # 12.1 gets the mailbox too.
        old = Phone(device_id=new_id("old"), user="bob", version="12.1")
        self.assertTrue(old.folders(self)[0][0].startswith("abq-"))

        ip_th, ip_res = self.held_ping(iphone, boxes[iphone.device_id][0], 120)
        an_th, an_res = self.held_ping(android, boxes[android.device_id][0], 120)
        time.sleep(1.5)
        self.assertTrue(ip_th.is_alive(), "iPhone Ping not held: %r" % ip_res)
        self.assertTrue(an_th.is_alive(), "Android Ping not held: %r" % an_res)
        t0 = time.monotonic()
        self.admin("mobile", "abq", "allow", iphone.device_id)
        self.admin("mobile", "abq", "block", android.device_id)
        ip_th.join(10)
        an_th.join(10)
        self.assertFalse(ip_th.is_alive() or an_th.is_alive(), "Pings still held after 10 s")
        for what, res in (("iPhone", ip_res), ("Android", an_res)):
            self.assertNotIn("error", res, "%s Ping: %r" % (what, res.get("error")))
            el = res["t"] - t0
            print("  [time] %-55s %6.2f s" % ("%s held Ping answered after abqctl" % what, el))
            TIMINGS.append(("%s held Ping answered after abqctl" % what, el))
            self.assertLess(el, 2.5, "%s Ping answered %.1f s after the change" % (what, el))
        assert_status_doc(self, ip_res["resp"], "Ping", 7, "allowed iPhone's held Ping")
        assert_status_doc(self, an_res["resp"], "Ping", 129, "blocked Android's held Ping")
        # The iPhone's old mailbox key: start over; then the real folders and mail.
        r = iphone.post("Sync", wbxml(sync_xml(boxes[iphone.device_id][0],
                                                boxes[iphone.device_id][1], True)))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(text_of(r.doc(), ".//Status"), "3", "Sync with a mailbox key: %r" % r)
        fs = iphone.folders(self)
        self.assertFalse(any(f[0].startswith("abq-") for f in fs), fs)
        real_inbox = [f for f in fs if f[3] == "2"][0][0]
        key = iphone.sync0(self, real_inbox)
        _, subjects = iphone.sync_changes(self, real_inbox, key)
        self.assertTrue(subjects, "the allowed iPhone sees no mail")
        self.assertFalse(any("put in quarantine" in x.lower() for x in subjects), subjects)
        assert_status_doc(self, android.foldersync(), "FolderSync", 129, "blocked Android")

        # Strict: a third device is blocked at its first request.
        self.admin("config", "global", "set", "attribute", "abqMode", "value", "Strict")
        time.sleep(1.5)
        third = Phone(device_id=new_id("third"), user="bob")
        assert_status_doc(self, third.foldersync(), "FolderSync", 129, "new device in Strict")
        # delete: decided anew (now by the mode, no longer the administrator's entry).
        self.admin("mobile", "abq", "delete", android.device_id)
        time.sleep(1.5)
        assert_status_doc(self, android.foldersync(), "FolderSync", 129, "deleted, Strict")
        d = self.device_info("bob", android.device_id)["device"]
        self.assertEqual((d["state"], d["reason"]), ("Blocked", "Mode"))

    def test_05c_allowed_phone_gets_its_real_folders(self):
        """issue 20: a quarantined phone holding a Ping is allowed: the Ping gets 7,
        its FolderSync with the mailbox's key gets the real folders (Status 1, the
        quarantine folders deleted, the real ones added) and a SyncKey the upstream
        takes; never a FolderSync 9, which makes iOS and Android drop the account."""
        phone, fkey, qfolders, qinbox, _ = self.quarantined_phone(
            "handover", version="16.1", device_type="iPhone")
        th, res = self.held_ping(phone, qinbox, 120)
        time.sleep(1.5)
        self.assertTrue(th.is_alive(), "Ping not held: %r" % res)
        t0 = time.monotonic()
        self.admin("mobile", "abq", "allow", phone.device_id)
        th.join(10)
        self.assertFalse(th.is_alive(), "Ping still held 10 s after the allow")
        self.assertNotIn("error", res, "Ping: %r" % res.get("error"))
        self.assertLess(res["t"] - t0, 2.5, "Ping answered %.1f s after the allow" % (
            res["t"] - t0))
        assert_status_doc(self, res["resp"], "Ping", 7, "allowed phone's held Ping")

        # Its next FolderSync, with the mailbox's key, as phones send it.
        with Timer("handover FolderSync (abqd asks the upstream)"):
            r = phone.post("FolderSync", wbxml(foldersync_xml(fkey)))
        key, count, ops = folder_changes(self, r, "FolderSync with the mailbox's key")
        print("  handover: key %s, Count %s, %s" % (key, count, ", ".join(
            "%s %s" % (op, sid) for op, sid, _ in ops)))
        self.assertTrue(key and key != "0" and not key.startswith("abq-"),
                        "not the upstream's SyncKey: %r" % key)
        deletes = [sid for op, sid, _ in ops if op == "Delete"]
        adds = [(sid, t) for op, sid, t in ops if op == "Add"]
        self.assertEqual(sorted(deletes), sorted(sid for sid, _ in qfolders),
                         "not every quarantine folder deleted: %r" % ops)
        self.assertEqual(count, str(len(ops)), "Count is not the number of changes: %r" % ops)
        self.assertFalse(any(sid.startswith("abq-") for sid, _ in adds), adds)
        real_inbox = [sid for sid, t in adds if t == "2"]
        self.assertEqual(len(real_inbox), 1, "not exactly one real Inbox added: %r" % adds)
        # The same folders SOGo gives a FolderSync 0 of this phone's own.
        direct = Phone(device_id=new_id("hodirect"), direct=True, version="16.1")
        self.assertEqual(sorted(adds), sorted((f[0], f[3]) for f in direct.folders(self)))

        # The upstream's key goes on: a further FolderSync reaches SOGo, Status 1.
        key2, _, ops2 = folder_changes(self, phone.post("FolderSync", wbxml(foldersync_xml(key))),
                                       "FolderSync with the handed-over key")
        self.assertFalse(any(op == "Add" for op, _, _ in ops2), "folders added twice: %r" % ops2)
        self.assertFalse(key2.startswith("abq-"), key2)
        # And the real mail.
        skey = phone.sync0(self, real_inbox[0])
        _, subjects = phone.sync_changes(self, real_inbox[0], skey)
        for subj in ALICE_SEEDED:
            self.assertIn(subj, subjects, "the allowed phone does not see its mail")
        self.assertFalse(any("put in quarantine" in x.lower() for x in subjects), subjects)
        self.assertRegex(E.H.log_text(), r"dev=%s cmd=FolderSync .*outcome=handover "
                         r"upstream=200 status=200" % phone.device_id)

    # The held cases of issue 20, as a quarantined phone meets them.
    def test_05d_hanging_sync_held_and_ended_by_an_allow(self):
        """A hanging Sync (Wait) with the current key and nothing changed is held
        like a Ping (MS-ASCMD 2.2.3.198); the allow ends it at once with the Sync
        start-over (Status 3 for the collection)."""
        phone, _, _, inbox, key = self.quarantined_phone("hang", version="14.1")
        result = {}

        def sync():
            try:
                result["resp"] = phone.post("Sync", wbxml(hanging_sync_xml(inbox, key, 1)),
                                            timeout=90)
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = e
            result["t"] = time.monotonic()

        th = threading.Thread(target=sync, daemon=True)
        th.start()
        time.sleep(1.5)
        self.assertTrue(th.is_alive(), "the hanging Sync was answered at once: %r" % result)
        t0 = time.monotonic()
        self.admin("mobile", "abq", "allow", phone.device_id)
        th.join(10)
        self.assertFalse(th.is_alive(), "the hanging Sync is still held 10 s after the allow")
        self.assertNotIn("error", result, "hanging Sync: %r" % result.get("error"))
        el = result["t"] - t0
        print("  [time] %-55s %6.2f s" % ("held Sync answered after the allow", el))
        TIMINGS.append(("held Sync answered after the allow", el))
        self.assertLess(el, 2.5, "the held Sync was answered %.1f s after the allow" % el)
        r = result["resp"]
        self.assertEqual(r.status, 200, r)
        c = r.doc().find(".//Collection")
        self.assertIsNotNone(c, "no Collection in the answer: %r" % r)
        self.assertEqual(text_of(c, "CollectionId"), inbox, r)
        self.assertEqual(text_of(c, "Status"), "3", "not the start-over answer: %r" % r)

    def test_05e_retried_sync_key_is_answered_again(self):
        """A phone whose Sync answer was lost resends the request with the same key
        (MS-ASCMD 3.1.5.9): the same answer again, Status 1, never 3."""
        phone, _, _, inbox, _ = self.quarantined_phone("retry", sync=False)
        k1 = phone.sync0(self, inbox)
        first = phone.post("Sync", wbxml(sync_xml(inbox, k1, True)))
        c1 = first.doc().find(".//Collection")
        self.assertEqual(text_of(c1, "Status"), "1", first)
        k2 = text_of(c1, "SyncKey")
        adds1 = [text_of(a, "ServerId") for a in c1.iter("Add")]
        self.assertEqual(len(adds1), 1, "the alert: %r" % first)
        # That answer was lost on the way: the phone sends the same request again.
        again = phone.post("Sync", wbxml(sync_xml(inbox, k1, True)))
        self.assertEqual(again.status, 200, again)
        c2 = again.doc().find(".//Collection")
        self.assertIsNotNone(c2, "retry: no Collection: %r" % again)
        self.assertEqual(text_of(c2, "Status"), "1", "retried key refused: %r" % again)
        self.assertEqual([text_of(a, "ServerId") for a in c2.iter("Add")], adds1,
                         "the retry is not answered with the same changes: %r" % again)
        k3 = text_of(c2, "SyncKey")
        # The key of the repeated answer works (the same key, or one that goes on).
        r = phone.post("Sync", wbxml(sync_xml(inbox, k3, True)))
        self.assertEqual(r.status, 200, r)
        if r.body:
            self.assertEqual(text_of(r.doc().find(".//Collection"), "Status"), "1",
                             "the key of the repeated answer (%s, first %s): %r" % (k3, k2, r))

    def test_05f_repeated_foldersync_key(self):
        """The same FolderSync twice (a lost answer, or nothing changed): Status 1
        both times, never 9."""
        phone, fkey = self.quarantined_phone("fsrep", sync=False)[:2]
        answers = []
        for n in (1, 2):
            key, _, ops = folder_changes(self, phone.post("FolderSync", wbxml(foldersync_xml(
                fkey))), "FolderSync %d with the same key" % n)
            answers.append((key, ops))
        self.assertTrue(answers[1][0], answers)
        r = phone.post("FolderSync", wbxml(foldersync_xml(answers[1][0])))
        folder_changes(self, r, "FolderSync with the key of the repeated answer")

    def test_05b_restart_between_foldersync_and_sync(self):
        """A quarantined phone's sync survives an abqd restart in the middle."""
        self.admin("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
        self.restore.append(("config", "global", "set", "attribute", "abqMode", "value",
                             "Permissive"))
        phone = Phone(device_id=new_id("restart"))
        fs = phone.folders(self)
        coll = [f for f in fs if f[3] == "2"][0][0]
        key = phone.sync0(self, coll)
        self.assertIsNotNone(E.H.stop_abqd(), "abqd did not stop")
        E.H.start_abqd()
        key, subjects = phone.sync_changes(self, coll, key)
        self.assertEqual(len(subjects), 1, "after the restart: %r" % subjects)


def main():
    E.run_suite("e2e_quarantine", E.Harness(), tests=QuarantineTests)


if __name__ == "__main__":
    main()
