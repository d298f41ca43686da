#!/bin/sh
# The benchmarks (not tests): make bench, or bench/run.sh.
#   1. the decision engine: full evaluations per second, 100 rules, 100,000 devices
#   2. abqctl on a 100,000-device registry: a 100,000-line import (with the
#      re-evaluation it triggers) and `mobile abq list --json`
# Results go to stdout and to bench/out/results.txt.
set -eu
cd "$(dirname "$0")/.."
B=$(realpath -m "${BENCH_BUILD:-build-bench}") # relative to the tree, or absolute
N=${BENCH_DEVICES:-100000}
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$B" bench_engine bench_populate abqctl >/dev/null
mkdir -p bench/out
out=bench/out/results.txt
: >"$out"

echo "== engine" | tee -a "$out"
"$B/bench/bench_engine" | tee -a "$out"

echo "== abqctl with $N devices" | tee -a "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '[store]\nurl = sqlite:abqd.db\n[eas]\ndefault_domain = example.com\n' >"$tmp/abqd.conf"
ctl="$B/src/ctl/abqctl -c $tmp/abqd.conf"
$ctl init >/dev/null
$ctl config global set attribute abqMode value Interactive >/dev/null
"$B/bench/bench_populate" "sqlite:$tmp/abqd.db" "$N"
# Half the lines name devices that exist (so the import re-decides them), half are new.
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) {
	if (i % 2) printf "DEV%08X/user%d@dom%d.example\n", i, int(i / 2), i % 10;
	else printf "NEWDEV%08X\n", i } }' >"$tmp/import.txt"

now() { date +%s.%N; }
t0=$(now); $ctl mobile abq import "$tmp/import.txt" Allowed >/dev/null; t1=$(now)
echo "import_${N}_lines_s $(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }")" | tee -a "$out"
t0=$(now); $ctl mobile abq list --json >"$tmp/list.json"; t1=$(now)
echo "list_json_${N}_devices_s $(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }") ($(wc -c <"$tmp/list.json") bytes)" | tee -a "$out"
t0=$(now); $ctl mobile abq list >/dev/null; t1=$(now)
echo "list_table_${N}_devices_s $(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }")" | tee -a "$out"
t0=$(now); $ctl mobile abq export status Allowed >"$tmp/export.txt"; t1=$(now)
echo "export_${N}_entries_s $(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }") ($(wc -l <"$tmp/export.txt") lines)" | tee -a "$out"
t0=$(now); $ctl config global set attribute abqMode value Strict >/dev/null; t1=$(now)
echo "mode_change_reevaluate_${N}_devices_s $(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }")" | tee -a "$out"
