#!/usr/bin/env python3
"""End to end, every feature suite on one fixture: what CTest's e2e (and, in the
plain build, e2e-valgrind, with abqd under valgrind) runs.

Run as:  python3 test_e2e.py --abqd PATH --abqctl PATH [--smtpd PATH] [TEST...]

The suites are the files of tests/e2e named for what they cover (test_proxy.py,
test_access.py, test_quarantine.py, test_notices.py, test_autodiscover.py,
test_daemon.py); each also runs alone. They run here in that order, in one
fixture and one abqd, the daemon's last (it ends with abqd's SIGTERM). Names given select tests as
unittest's do (test_05c_allowed_phone_gets_its_real_folders).
"""

import harness as E
from test_access import AccessTests
from test_autodiscover import AutodiscoverTests
from test_daemon import DaemonTests
from test_notices import NoticeTests
from test_proxy import ProxyTests
from test_quarantine import QuarantineTests


def main():
    E.run_suite("e2e", E.Harness(),
                tests=[ProxyTests, AccessTests, QuarantineTests, NoticeTests, AutodiscoverTests,
                        DaemonTests])


if __name__ == "__main__":
    main()
