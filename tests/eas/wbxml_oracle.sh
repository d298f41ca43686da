#!/bin/sh
# wbxml_oracle.sh: check abqd's WBXML codec byte for byte against libwbxml.
#
# usage: wbxml_oracle.sh WBXML-TOOL CORPUS-DIR
#
# For every CORPUS-DIR/NAME.xml (one realistic request or response of every
# EAS command) this runs Debian's libwbxml2-utils as an independent oracle:
#   0. xml2wbxml -a -n gives the reference bytes, which must equal the checked-in
#      NAME.wbxml (the seeds the unit and fuzz tests replay without libwbxml);
#   1. wbxml-tool decodes them and re-encodes: the bytes must be identical;
#   2. wbxml2xml of our bytes must equal wbxml2xml of libwbxml's bytes.
# Names never matter here, only bytes: libwbxml misnames a few tokens (see
# src/eas/wbxml_tables.c), so the XML inputs use libwbxml's names.
#
# Find (code page 25, EAS 16.1) is not in libwbxml: find-*.wbxml are
# hand-assembled from the MS-ASWBXML token table (test_wbxml.c holds the same
# bytes with comments); for them only step 1 applies, and libwbxml must still
# fail on them (if a future libwbxml learns the page, extend this script).
#
# Missing oracle tools are a failure, not a skip: scripts/install-deps.sh
# installs libwbxml2-utils.
set -u

tool=${1:?usage: wbxml_oracle.sh WBXML-TOOL CORPUS-DIR}
corpus=${2:?usage: wbxml_oracle.sh WBXML-TOOL CORPUS-DIR}

for t in xml2wbxml wbxml2xml cmp; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "wbxml_oracle: $t not found (apt-get install libwbxml2-utils; see scripts/install-deps.sh)" >&2
		exit 1
	fi
done
[ -x "$tool" ] || { echo "wbxml_oracle: $tool is not executable" >&2; exit 1; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

for xml in "$corpus"/*.xml; do
	name=$(basename "$xml" .xml)
	ref="$tmp/$name.lib.wbxml"
	ours="$tmp/$name.abq.wbxml"
	if ! xml2wbxml -a -n -o "$ref" "$xml" >"$tmp/log" 2>&1; then
		bad "$name: xml2wbxml failed: $(cat "$tmp/log")"
		continue
	fi
	if cmp -s "$ref" "$corpus/$name.wbxml"; then ok; else
		bad "$name: $name.wbxml is stale (regenerate: xml2wbxml -a -n -o $name.wbxml $name.xml)"
	fi
	if ! "$tool" encode "$ref" "$ours" 2>"$tmp/log"; then
		bad "$name: wbxml-tool could not decode libwbxml's bytes: $(cat "$tmp/log")"
		continue
	fi
	if cmp "$ref" "$ours" >"$tmp/log" 2>&1; then ok; else
		bad "$name: re-encoding differs from libwbxml: $(cat "$tmp/log")"
	fi
	wbxml2xml -l ACTIVESYNC -m 0 -o "$tmp/ref.xml" "$ref" >/dev/null 2>&1
	wbxml2xml -l ACTIVESYNC -m 0 -o "$tmp/ours.xml" "$ours" >/dev/null 2>&1
	if [ -s "$tmp/ref.xml" ] && cmp -s "$tmp/ref.xml" "$tmp/ours.xml"; then ok; else
		bad "$name: wbxml2xml renderings differ"
	fi
	if "$tool" decode "$ref" >"$tmp/dec.xml" 2>"$tmp/log" && [ -s "$tmp/dec.xml" ]; then ok; else
		bad "$name: wbxml-tool decode failed: $(cat "$tmp/log")"
	fi
	rm -f "$tmp/ref.xml" "$tmp/ours.xml"
done

for seed in "$corpus"/find-*.wbxml; do
	[ -e "$seed" ] || { bad "no find-*.wbxml seeds"; break; }
	name=$(basename "$seed" .wbxml)
	if "$tool" encode "$seed" "$tmp/$name.abq.wbxml" 2>"$tmp/log" &&
		cmp -s "$seed" "$tmp/$name.abq.wbxml"; then ok; else
		bad "$name: Find page round trip failed: $(cat "$tmp/log")"
	fi
	# Documents the gap in the oracle: libwbxml does not know page 25.
	if wbxml2xml -l ACTIVESYNC -m 0 -o "$tmp/find.xml" "$seed" >/dev/null 2>&1 &&
		grep -q '<Find' "$tmp/find.xml"; then
		bad "$name: libwbxml now knows the Find page; compare it as an oracle too"
	else
		ok
	fi
done

# The device-information lookup the daemon relies on, through the CLI.
model=$("$tool" find "$corpus/settings-request.wbxml" \
	"Settings:DeviceInformation/Settings:Set/Settings:Model" 2>/dev/null)
if [ "$model" = "iPhone15,3" ]; then ok; else bad "find Model gave '$model'"; fi

echo "wbxml_oracle: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
