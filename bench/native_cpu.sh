#!/bin/bash
# Where a native no-change Sync's time goes as the Inbox grows (not a test): abqd
# alone (no SOGo asked) on the private fixture's Dovecot, the Inbox seeded in
# steps, and at each size the CPU that abqd and Dovecot spend per request.
#
#   bench/native_cpu.sh
#   BENCH_SIZES="2000 10000" BENCH_DEVICES=3 BENCH_ROUNDS=3 BENCH_DURATION=10 bench/native_cpu.sh
#
# Root, the fixture and its ports as bench/native.sh (BENCH_PORT_BASE, 18800..18816;
# SOGo runs but stays idle); abqd from build-bench (RelWithDebInfo, built as
# native.sh builds it), native mode, Permissive, one worker. For each size in
# BENCH_SIZES (ascending; the Inbox seeded up to it by upstream.sh seed-bulk):
# BENCH_DEVICES devices synced to the end (bench/native_clients.py prep), then
# BENCH_ROUNDS wrk rounds of the no-change Sync (bench/native_sync.lua, -t1 -c50),
# each with the CPU ticks of abqd and of the fixture Dovecot's processes (the
# master's children: its imap processes, logins, auth) over the round, divided by
# the requests answered. abqd and Dovecot on CPU BENCH_PIN_SUT (0), wrk and the
# clients on BENCH_PIN_LOAD (1). About 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath -m "${BENCH_BUILD:-build-bench}") # relative to the tree, or absolute
SIZES=${BENCH_SIZES:-2000 10000}
NDEV=${BENCH_DEVICES:-3}
ROUNDS=${BENCH_ROUNDS:-3}
DUR=${BENCH_DURATION:-10}
BASE=${BENCH_PORT_BASE:-18800}
SUT=${BENCH_PIN_SUT:-0}
LOAD=${BENCH_PIN_LOAD:-1}
ABQ=$BASE ADM=$((BASE + 1))

. bench/lib.sh
need wrk wrk
[ "$(id -u)" = 0 ] || { echo "native_cpu.sh: needs root (the SOGo fixture)" >&2; exit 1; }
tests/fixture/install.sh >/dev/null
build_native

fixture_up=
cleanup_more() { fixture_native_down; }
bench_init native-cpu
fixture_native_up
dpid=$(pgrep -f "dovecot -c $tmp/fixture/dovecot/dovecot.conf" | head -1)
[ -n "$dpid" ] || { echo "native_cpu.sh: the fixture's Dovecot not found" >&2; exit 1; }

mkdir -p "$tmp/abqd"
cat >"$tmp/abqd/abqd.conf" <<EOF2
[eas]
listen = 127.0.0.1:$ABQ
workers = 1
max_connections_per_address = 100000
[upstream]
url = imap://127.0.0.1:$ABQ_FIX_IMAP_PORT
[store]
url = sqlite:abqd.db
[admin]
listen = 127.0.0.1:$ADM
[log]
level = ${BENCH_LOG:-warn}
EOF2
ctl() { "$ABQCTL" -c "$tmp/abqd/abqd.conf" "$@"; }
ctl init >/dev/null
ctl config global set attribute abqMode value Permissive >/dev/null
abqd_spawn "$tmp/abqd" taskset -c "$SUT"
wait_port "$ABQ"
apid=${pids[-1]}
grep -q abqd "/proc/$apid/comm" || { echo "abqd pid not found"; exit 1; }

# dovecot_ticks: CPU ticks of the fixture Dovecot's processes (its master's children).
dovecot_ticks() {
	local t=0 p
	for p in $(pgrep -P "$dpid" || true); do t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done
	echo "$t"
}
hz=$(getconf CLK_TCK)
say "== native no-change Sync CPU $(date -u +%Y-%m-%dT%H:%M:%SZ), sizes $SIZES, $NDEV devices, load average $(cut -d' ' -f1-3 /proc/loadavg)"
have=0
for n in $SIZES; do
	tests/fixture/upstream.sh seed-bulk alice INBOX $((n - have)) --dir "$tmp/fixture" | tail -1
	have=$n
	taskset -c "$LOAD" python3 bench/native_clients.py --port "$ABQ" prep --prefix "C$n-" --devices "$NDEV" \
		--bodies "$tmp/bodies.$n" | sed "s/^/$n /"
	for r in $(seq "$ROUNDS"); do
		a0=$(cpu_ticks "$apid") d0=$(dovecot_ticks)
		taskset -c "$LOAD" wrk -t1 -c50 -d"$DUR"s --timeout 30s -s bench/native_sync.lua \
			"http://127.0.0.1:$ABQ" -- /Microsoft-Server-ActiveSync "$tmp/bodies.$n" >"$tmp/wrk.out"
		a1=$(cpu_ticks "$apid") d1=$(dovecot_ticks)
		read -r rps req < <(awk '/^RESULT/ { split($0, f, /[ =]/); print f[3], f[9] }' "$tmp/wrk.out")
		say "native_cpu $n messages round $r: $rps req/s; CPU per request abqd $(awk "BEGIN { printf \"%.2f\", ($a1 - $a0) * 1000 / $hz / $req }") ms, Dovecot $(awk "BEGIN { printf \"%.2f\", ($d1 - $d0) * 1000 / $hz / $req }") ms ($req requests; load $(cut -d' ' -f1 /proc/loadavg))"
	done
done
say "abqd VmRSS $(rss_kib "$apid") KiB"
# abqd's log kept when a level was asked for (BENCH_LOG=debug).
[ -z "${BENCH_LOG:-}" ] || cp "$tmp/abqd/stderr" bench/out/native-cpu-abqd.log
stderr_summary "$tmp/abqd/stderr"
