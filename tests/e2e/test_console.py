#!/usr/bin/env python3
"""The web console in a real browser: abqd in front of the real SOGo fixture,
an administrator in Debian's headless chromium (tests/browser/console.mjs,
driven by playwright-core), and phones speaking EAS through abqd.

Run by CTest as:
  python3 test_console.py --abqd PATH --abqctl PATH [--artifacts DIR] [unittest args]

The story (issue 6, "Done when"): mode Interactive; an administrator made
with `abqctl admin add`; bob's phone is quarantined before the page opens,
alice's while it is open. In the page: a wrong password shows the API's
message, the login works, alice's phone appears in the queue without a reload,
the badge counts the queue, a screenshot of the queue is kept
(ARTIFACTS/console-queue.png and -phone.png), the keyboard reaches Allow, a
click allows; bob's phone is blocked from its detail page; rules (a bad regex
shows the API's message), a domain's mode and a notice template are made,
changed and removed through their forms; the device list shows an entry no
phone has used yet as "not seen yet"; with the event stream refused, a
third phone still appears (polling). Then alice's phone
gets her real folders and mail (one message delivered to the fixture during
the test included) and bob's is refused, and the history names the
administrator.

The browser is Debian's chromium (/usr/bin/chromium, no browser download);
playwright-core comes from tests/browser/package-lock.json (`npm ci` there is
run when node_modules is missing). A missing piece is a failure, never a skip.
"""

import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BROWSER = os.path.join(ROOT, "tests", "browser")
sys.path.insert(0, HERE)

import harness as e2e  # noqa: E402 - the harness and the phone
from harness import ALICE_SEEDED, Phone, assert_status_doc, new_id  # noqa: E402

ARTIFACTS = None
CHROMIUM = "/usr/bin/chromium"


def node_ready():
    """tests/browser with its node_modules (npm ci from the lock file)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise AssertionError("%s is missing (scripts/install-deps.sh installs nodejs and npm)"
                                 % tool)
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError("%s is missing (scripts/install-deps.sh installs chromium)" % CHROMIUM)
    if not os.path.isdir(os.path.join(BROWSER, "node_modules", "playwright-core")):
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER,
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError("npm ci in tests/browser failed: %s%s" % (p.stdout, p.stderr))


class Console(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.H = e2e.H
        self.assertIsNotNone(self.H.abqd, "abqd is not running")
        self.assertIsNone(self.H.abqd.poll(), "abqd died (exit %s)" % self.H.abqd.returncode)

    def ctl(self, *words, stdin=None):
        env = dict(os.environ)
        env.pop("ABQD_CONFIG", None)
        env.pop("SUDO_USER", None)
        p = subprocess.run([e2e.ABQCTL, "-c", self.H.conf] + [str(w) for w in words],
                           input=stdin, capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 0, "abqctl %s: rc %d: %s" % (
            " ".join(map(str, words)), p.returncode, p.stderr))
        return p.stdout

    def until(self, what, fn, limit, step=0.2):
        t0 = time.monotonic()
        while True:
            last = fn()
            if last and last[0]:
                print("  [time] %-55s %6.2f s" % (what, time.monotonic() - t0), flush=True)
                return last
            if time.monotonic() - t0 > limit:
                self.fail("%s: not within %.1f s; last: %r" % (what, limit, last))
            time.sleep(step)

    def quarantined_mailbox(self, phone, info):
        """A new phone as it connects: Settings with its DeviceInformation (so
        the queue shows its model and OS), then FolderSync, answered by the
        quarantine mailbox."""
        r = phone.post("Settings", e2e.wbxml(e2e.settings_xml(info)))
        self.assertEqual(r.status, 200, "Settings: %r" % r)
        fs = phone.folders(self)
        self.assertTrue(any(f[3] == "2" and f[0].startswith("abq-") for f in fs),
                        "not the quarantine mailbox: %r" % fs)
        d = e2e.H.ctl_json(self, "mobile", "getDeviceInfo", phone.user, phone.device_id)["device"]
        self.assertEqual(d["state"], "Quarantined", d)
        self.assertEqual((d["model"], d["os"]), (info["Model"], info["OS"]), d)

    def test_console_allow_from_the_queue(self):
        H = self.H
        self.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
        name = "console-admin"
        password = secrets.token_urlsafe(18)
        self.ctl("admin", "add", name, stdin=password + "\n")
        time.sleep(1.5)  # abqd reads the change log once a second

        # bob's phone waits in the queue before the page opens.
        bob_ua = "Android-SAMSUNG-SM-G991B/101.2403"
        bob = Phone(device_id=new_id("bobphone"), user="bob", device_type="Android",
                    user_agent=bob_ua)
        self.quarantined_mailbox(bob, {"Model": "SM-G991B", "OS": "Android 14",
                                       "UserAgent": bob_ua})
        # New mail for alice while her phone waits: it must sync once allowed.
        subject = "Console test %s" % uuid.uuid4().hex[:8]
        H.fixture_ok("deliver", "alice", subject)

        alice_ua = "Apple-iPhone16C2/2201.81"
        alice = Phone(device_id=new_id("aliceiphone"), user="alice", version="16.1",
                      device_type="iPhone", user_agent=alice_ua)
        shot = os.path.join(ARTIFACTS, "console-queue.png")
        url = "http://127.0.0.1:%d/" % H.admin_port
        cmd = ["node", os.path.join(BROWSER, "console.mjs"), url, name, password,
               alice.device_id, shot, bob.device_id]
        print("  $ %s" % " ".join(c if c != password else "PASSWORD" for c in cmd), flush=True)
        # An entry the administrator made ahead of the phone: the device list shows it.
        unseen = new_id("notseen").upper()
        self.ctl("mobile", "abq", "allow", unseen, "account", "carol")
        env = dict(os.environ, ABQ_CONSOLE_FALLBACK="1", ABQ_CONSOLE_UNSEEN=unseen)
        browser = subprocess.Popen(cmd, cwd=BROWSER, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env,
                                   start_new_session=True)
        lines = queue.Queue()

        def reader():
            for line in browser.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)
        threading.Thread(target=reader, daemon=True).start()
        out = []
        try:
            # Until the page is open and logged in ...
            deadline = time.monotonic() + 90
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    self.fail("the browser did not log in within 90 s:\n%s" % "\n".join(out))
                if line is None:
                    self.fail("the browser script ended early (rc %s):\n%s" % (
                        browser.wait(), "\n".join(out)))
                print("  browser| %s" % line, flush=True)
                out.append(line)
                if line == "READY":
                    break
            # ... then alice's phone makes its first request.
            self.quarantined_mailbox(alice, {"Model": "iPhone16,2", "OS": "iOS 18.1",
                                             "UserAgent": alice_ua})
            while True:
                try:
                    line = lines.get(timeout=180)
                except queue.Empty:
                    self.fail("the browser script is stuck:\n%s" % "\n".join(out))
                if line is None:
                    break
                print("  browser| %s" % line, flush=True)
                out.append(line)
                if line == "READY2":
                    # The page now polls (its event stream refused): one more phone.
                    third = Phone(device_id=new_id("alicetablet"), user="alice",
                                  device_type="iPad", user_agent="Apple-iPad13C4/2201.81")
                    self.quarantined_mailbox(third, {"Model": "iPad13,4", "OS": "iOS 18.1",
                                                     "UserAgent": "Apple-iPad13C4/2201.81"})
            rc = browser.wait(30)
        finally:
            if browser.poll() is None:
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait()
            browser.stdout.close()
        self.assertEqual(rc, 0, "the browser checks failed:\n%s" % "\n".join(out))
        self.assertIn("READY2", out, "the polling check did not run")
        for path in (shot, shot[:-4] + "-phone.png"):
            self.assertIn("screenshot: " + path, out)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % path)
            print("  artifact: %s" % path, flush=True)

        # The phone allowed in the page now syncs the user's real mail.
        def real_folders():
            fs = alice.folders(self)
            return (not any(f[0].startswith("abq-") for f in fs), fs)
        _, fs = self.until("alice's phone gets her real folders", real_folders, 10)
        inbox = [f for f in fs if f[3] == "2"]
        self.assertEqual(len(inbox), 1, fs)
        key = alice.sync0(self, inbox[0][0])
        _, subjects = alice.sync_changes(self, inbox[0][0], key)
        self.assertIn(subject, subjects, "the mail delivered during the test does not sync")
        for s in ALICE_SEEDED:
            self.assertIn(s, subjects, "alice's seeded mail is missing")
        self.assertFalse(any("approv" in s.lower() or "quarantin" in s.lower() for s in subjects),
                         subjects)

        # The phone blocked from its detail page is refused.
        def refused():
            r = bob.foldersync()
            return (r.status == 200 and r.doc().findtext("Status") == "129", r)
        _, r = self.until("bob's phone is refused", refused, 10)
        assert_status_doc(self, r, "FolderSync", 129, "blocked in the console")

        # Both changes are recorded under the administrator's name.
        for phone, state in ((alice, "Allowed"), (bob, "Blocked")):
            d = e2e.H.ctl_json(self, "mobile", "getDeviceInfo", phone.user,
                               phone.device_id)["device"]
            self.assertEqual((d["state"], d["reason"], d["stateBy"]),
                             (state, "Individual", name), d)

    def test_zz_clean_exit(self):
        """abqd (with its admin listener and open event streams) ends on SIGTERM
        with status 0 and no sanitizer report."""
        rc = self.H.stop_abqd()
        self.assertEqual(rc, 0, "abqd exit status after SIGTERM: %r" % rc)
        log = self.H.log_text(limit=10 ** 9)
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(bad, log, "sanitizer report in abqd's log")


def main():
    def add_args(ap):
        ap.add_argument("--artifacts", help="where the screenshots go (default: BUILD/artifacts)")

    def before_start(args):
        global ARTIFACTS
        build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(args.abqd))))
        ARTIFACTS = os.path.abspath(args.artifacts or os.path.join(build, "artifacts"))
        node_ready()
        os.makedirs(ARTIFACTS, exist_ok=True)

    e2e.run_suite("console", e2e.Harness(), add_args=add_args, before_start=before_start)


if __name__ == "__main__":
    main()
