#!/bin/sh
# mailbox_oracle.sh: libwbxml decodes every answer of the quarantine mailbox.
#
# usage: mailbox_oracle.sh MAILBOX-TOOL
#
# mailbox-tool writes a phone's first session at EAS 12.0, 12.1, 14.0, 14.1, 16.0
# and 16.1; Debian's wbxml2xml (libwbxml2-utils, an independent codec) must
# decode each answer, and what each answer must say is checked in its XML: the
# alert's subject in Sync and ItemOperations, a Search finding it, the MIME message, the statuses
# of the refusals, and the Provision elements of each version. A missing
# wbxml2xml is a failure (scripts/install-deps.sh installs it).
set -u
tool=${1:?usage: mailbox_oracle.sh MAILBOX-TOOL}
command -v wbxml2xml >/dev/null 2>&1 || {
	echo "mailbox_oracle: wbxml2xml not found (apt-get install libwbxml2-utils)" >&2
	exit 1
}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
"$tool" "$tmp" || { echo "mailbox_oracle: mailbox-tool failed" >&2; exit 1; }

pass=0
fail=0
for f in "$tmp"/*.wbxml; do
	name=$(basename "$f" .wbxml)
	if wbxml2xml -l ACTIVESYNC -m 0 -o "$tmp/$name.xml" "$f" >"$tmp/log" 2>&1 &&
		[ -s "$tmp/$name.xml" ]; then
		pass=$((pass + 1))
	else
		echo "FAIL: $name: wbxml2xml: $(cat "$tmp/log")" >&2
		fail=$((fail + 1))
		continue
	fi
	case "$name" in
	*-sync-plain | *-sync-html | *-itemoperations)
		want="has been put in quarantine" ;;
	*-sync-mime) want="multipart/alternative" ;;
	*-sync-add) want="<Status>6</Status>" ;;
	*-sync-limit) want="<Limit>" ;;
	*-settings-oof) want="<Status>7</Status>" ;;
	*-moveitems) want="<Status>3</Status>" ;;
	*-emptyfolder) want="abq-deleted" ;;
	*-search) want="<Range>0-0</Range><Total>1</Total>" ;;
	12.0-provision) want="DevicePasswordEnabled" ;;
	*-provision) want="AllowStorageCard" ;;
	*) want="" ;;
	esac
	if [ -n "$want" ]; then
		if grep -q "$want" "$tmp/$name.xml"; then
			pass=$((pass + 1))
		else
			echo "FAIL: $name: \"$want\" is missing from wbxml2xml's output" >&2
			fail=$((fail + 1))
		fi
	fi
	# 12.0 knows no 12.1 policy element.
	if [ "$name" = 12.0-provision ] && grep -q "AllowStorageCard" "$tmp/$name.xml"; then
		echo "FAIL: $name: a 12.1 element in the 12.0 policy" >&2
		fail=$((fail + 1))
	fi
done
echo "mailbox_oracle: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
