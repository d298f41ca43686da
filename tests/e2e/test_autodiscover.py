#!/usr/bin/env python3
"""End to end: Autodiscover for ActiveSync answered by abqd itself ([eas] public_url),
as an iPhone, an Android client and Outlook mobile ask it, over HTTP to a real
abqd in front of the fixture.

A second abqd with public_url set runs beside the harness's own (which has none
and passes Autodiscover through, as before). Runs alone or in test_e2e.py:

    python3 test_autodiscover.py --abqd PATH --abqctl PATH [TEST...]
"""

import json
import os
import xml.etree.ElementTree as ET

import harness as E
from harness import Phone

PUBLIC_URL = "https://mail.example.test/Microsoft-Server-ActiveSync"
REQ_NS = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
RESP_NS = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
TOP_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"

IOS_BODY = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Autodiscover xmlns="%s">\n\t<Request>\n'
            '\t\t<EMailAddress>%%s</EMailAddress>\n'
            '\t\t<AcceptableResponseSchema>%s</AcceptableResponseSchema>\n'
            '\t</Request>\n</Autodiscover>\n' % (REQ_NS, RESP_NS))
ANDROID_BODY = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="%s"><Request>'
                '<EMailAddress>%%s</EMailAddress><AcceptableResponseSchema>%s'
                '</AcceptableResponseSchema></Request></Autodiscover>' % (REQ_NS, RESP_NS))
OUTLOOK_BODY = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.'
                'microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request>'
                '<EMailAddress>alice@example.test</EMailAddress><AcceptableResponseSchema>'
                'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'
                '</AcceptableResponseSchema></Request></Autodiscover>')
XXE_BODY = ('<?xml version="1.0"?>\n<!DOCTYPE Autodiscover [<!ENTITY xxe SYSTEM '
            '"file:///etc/passwd">]>\n<Autodiscover xmlns="%s"><Request>'
            '<EMailAddress>&xxe;</EMailAddress><AcceptableResponseSchema>%s'
            '</AcceptableResponseSchema></Request></Autodiscover>' % (REQ_NS, RESP_NS))


class AutodiscoverTests(E.Case):
    side = None  # (process, port, conf) of the abqd with public_url

    @classmethod
    def tearDownClass(cls):
        if AutodiscoverTests.side is not None:
            E.Case.stop_side(AutodiscoverTests.side[0])
            AutodiscoverTests.side = None

    def phone(self, user="alice", password="secret"):
        """A client of the abqd with public_url."""
        if AutodiscoverTests.side is None:
            AutodiscoverTests.side = self.side_abqd("autod", "public_url = %s\n" % PUBLIC_URL)
        p = Phone(user=user, password=password)
        p.port = AutodiscoverTests.side[1]
        return p

    def pox(self, phone, body, path="/autodiscover/autodiscover.xml", auth=True):
        h = {"Content-Type": "text/xml", "User-Agent": "Apple-iPhone/1905.1",
             "Host": "autodiscover.example.test"}
        if auth:
            h["Authorization"] = phone.auth()
        return phone.http("POST", path, h, body.encode())

    def json_get(self, phone, target, auth=True):
        h = {"User-Agent": "Outlook-iOS/2.0", "Accept": "application/json"}
        if auth:
            h["Authorization"] = phone.auth()
        return phone.http("GET", target, h)

    def settings_of(self, r):
        """The Server settings of a POX answer (fails on an Error)."""
        self.assertEqual(r.status, 200, "%r" % r)
        doc = ET.fromstring(r.body)
        self.assertEqual(doc.tag, "{%s}Autodiscover" % TOP_NS)
        resp = doc.find("{%s}Response" % RESP_NS)
        self.assertIsNotNone(resp, r.body)
        self.assertIsNone(resp.find("{%s}Error" % RESP_NS), r.body)
        server = resp.find("{%(n)s}Action/{%(n)s}Settings/{%(n)s}Server" % {"n": RESP_NS})
        self.assertIsNotNone(server, r.body)
        return ({c.tag.split("}")[1]: c.text for c in server},
                resp.findtext("{%(n)s}User/{%(n)s}EMailAddress" % {"n": RESP_NS}))

    def error_code(self, r):
        self.assertEqual(r.status, 200, "%r" % r)
        doc = ET.fromstring(r.body)
        self.assertNotIn(PUBLIC_URL.encode(), r.body)
        return doc.findtext("{%(n)s}Response/{%(n)s}Error/{%(n)s}ErrorCode" % {"n": RESP_NS})

    def test_01_pox_answered_with_the_public_url(self):
        """An iPhone's and an Android client's request get MobileSync at public_url,
        whatever case the path is in and whichever host name they came to."""
        phone = self.phone()
        for body, path in ((IOS_BODY, "/autodiscover/autodiscover.xml"),
                           (ANDROID_BODY, "/Autodiscover/Autodiscover.xml"),
                           (IOS_BODY, "/AutoDiscover/AutoDiscover.xml")):
            r = self.pox(phone, body % "alice@example.test", path)
            server, addr = self.settings_of(r)
            self.assertEqual(server, {"Type": "MobileSync", "Url": PUBLIC_URL,
                                      "Name": PUBLIC_URL})
            self.assertEqual(addr, "alice@example.test")
            self.assertTrue(r.headers["content-type"].startswith("text/xml"))
        # The account in another spelling is the same account.
        server, _ = self.settings_of(self.pox(phone, ANDROID_BODY % "Alice@Example.TEST"))
        self.assertEqual(server["Url"], PUBLIC_URL)

    def test_02_json_answered_with_the_public_url(self):
        """Outlook mobile's two forms."""
        phone = self.phone()
        for target in ("/autodiscover/autodiscover.json?Email=alice%40example.test"
                       "&Protocol=ActiveSync&RedirectCount=1",
                       "/autodiscover/autodiscover.json/v1.0/alice@example.test"
                       "?Protocol=ActiveSync&RedirectCount=1"):
            r = self.json_get(phone, target)
            self.assertEqual(r.status, 200, "%s: %r" % (target, r))
            self.assertTrue(r.headers["content-type"].startswith("application/json"))
            self.assertEqual(json.loads(r.body), {"Protocol": "ActiveSync", "Url": PUBLIC_URL})

    def test_03_nothing_without_good_credentials(self):
        """401 without credentials or with a wrong password, nothing recorded."""
        phone = self.phone()
        bad = Phone(password="wrong")
        bad.port = phone.port
        for who, auth in ((phone, False), (bad, True)):
            r = self.pox(who, IOS_BODY % "alice@example.test", auth=auth)
            self.assertEqual(r.status, 401, "%r" % r)
            self.assertIn("www-authenticate", r.headers)
            self.assertNotIn(PUBLIC_URL.encode(), r.body)
            r = self.json_get(who, "/autodiscover/autodiscover.json/v1.0/alice@example.test"
                              "?Protocol=ActiveSync", auth=auth)
            self.assertEqual(r.status, 401, "%r" % r)
            self.assertNotIn(PUBLIC_URL.encode(), r.body)
        env = dict(os.environ)
        env.pop("ABQD_CONFIG", None)
        out = E.subprocess.run([E.ABQCTL, "-c", AutodiscoverTests.side[2], "mobile", "abq",
                                "history"], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn("autodiscover", out.stdout.lower())

    def test_04_another_users_address_is_not_found(self):
        """alice asking for bob's settings gets "cannot be found", never a URL."""
        phone = self.phone()
        self.assertEqual(self.error_code(self.pox(phone, IOS_BODY % "bob@example.test")), "500")
        r = self.json_get(phone, "/autodiscover/autodiscover.json?Email=bob%40example.test"
                          "&Protocol=ActiveSync")
        self.assertEqual(r.status, 404, "%r" % r)
        self.assertEqual(json.loads(r.body)["ErrorCode"], "UserNotFound")
        self.assertNotIn(PUBLIC_URL.encode(), r.body)

    def test_05_bad_bodies(self):
        """Malformed XML and an external entity: 600, nothing expanded; a body over
        64 KiB: 413."""
        phone = self.phone()
        self.assertEqual(self.error_code(self.pox(phone, "<Autodiscover><Request>")), "600")
        r = self.pox(phone, XXE_BODY)
        self.assertEqual(self.error_code(r), "600")
        self.assertNotIn(b"root:", r.body)
        big = IOS_BODY % "alice@example.test" + " " * (65 * 1024)
        try:
            r = self.pox(phone, big)
            self.assertEqual(r.status, 413, "%r" % r)
        except (ConnectionError, OSError):
            pass  # the answer and the close may race the last bytes sent

    def test_06_other_autodiscover_goes_to_the_upstream(self):
        """Outlook's schema, a GET and another path under /autodiscover/ are the
        upstream's: the same answer as from the upstream directly."""
        phone = self.phone()
        direct = Phone(direct=True)
        for method, path, body in (("POST", "/autodiscover/autodiscover.xml", OUTLOOK_BODY),
                                   ("GET", "/autodiscover/autodiscover.xml", None),
                                   ("POST", "/autodiscover/autodiscover.svc", OUTLOOK_BODY),
                                   ("GET", "/autodiscover/autodiscover.json?Email=alice%40"
                                    "example.test&Protocol=Ews", None)):
            h = {"Authorization": phone.auth(), "Content-Type": "text/xml"}
            r = phone.http(method, path, h, body.encode() if body else None)
            d = direct.http(method, path, h, body.encode() if body else None)
            self.assertEqual(r.status, d.status, "%s %s: abqd %r, upstream %r" % (
                method, path, r, d))
            self.assertEqual(r.body, d.body)
            self.assertNotIn(PUBLIC_URL.encode(), r.body)

    def test_07_without_public_url_passed_through(self):
        """The harness's abqd has no public_url: a phone's POX goes to the upstream."""
        phone = Phone()
        direct = Phone(direct=True)
        h = {"Authorization": phone.auth(), "Content-Type": "text/xml"}
        body = (IOS_BODY % "alice@example.test").encode()
        r = phone.http("POST", "/autodiscover/autodiscover.xml", h, body)
        d = direct.http("POST", "/autodiscover/autodiscover.xml", h, body)
        self.assertEqual((r.status, r.body), (d.status, d.body))
        self.assertNotIn(PUBLIC_URL.encode(), r.body)


def main():
    E.run_suite("e2e_autodiscover", E.Harness(), tests=AutodiscoverTests)


if __name__ == "__main__":
    main()
