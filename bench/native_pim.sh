#!/bin/bash
# The contacts and calendar benchmark of native mode (not a test): abqd serving
# alice's SOGo address book and calendar through CardDAV/CalDAV against SOGo's own
# ActiveSync on the same data.
#
#   bench/native_pim.sh
#   BENCH_CONTACTS=2000 BENCH_EVENTS=5000 BENCH_CONTACTS_FIRST=500 BENCH_EVENTS_FIRST=1250 \
#     BENCH_DEVICES=6 BENCH_TIMED=3 BENCH_ROUNDS=3 BENCH_DURATION=10 bench/native_pim.sh
#     (the defaults)
#   BENCH_CONTACTS=200 BENCH_EVENTS=300 BENCH_CONTACTS_FIRST=100 BENCH_EVENTS_FIRST=150 \
#     BENCH_DEVICES=2 BENCH_TIMED=1 BENCH_ROUNDS=1 BENCH_DURATION=3 bench/native_pim.sh
#     (checks the script in a few minutes)
#   BENCH_ONLY=Contacts|Calendar bench/native_pim.sh   (one collection's sync and rounds)
#   BENCH_LOG=debug ... (abqd's log kept in bench/out/native-pim-abqd.log)
#   BENCH_ABQD=/path/to/abqd ... (that binary instead of build-bench's, e.g. a change
#     being measured; abqctl still build-bench's)
#
# Needs the real upstream of tests/fixture (SOGo 5.8 + sogo-activesync, Dovecot,
# PostgreSQL; installed by tests/fixture/install.sh), and root, as the fixture
# does. A private fixture is started in this run's temporary folder on its own
# ports (BENCH_PORT_BASE.., 18900..18916). abqd runs in native mode (`[upstream]
# url = imap://` the private Dovecot, `caldav` and `carddav` = the private SOGo's
# http://127.0.0.1:PORT/SOGo/dav/; Permissive: the devices are Allowed), one
# worker; SOGo is asked directly. The same phone requests go to both
# (bench/native_pim_clients.py, bench/native_sync.lua):
#
# 0. Data: alice's SOGo address book ("Personal Address Book") gets
#    BENCH_CONTACTS_FIRST generated cards and her calendar ("Personal Calendar")
#    BENCH_EVENTS_FIRST generated events, PUT through SOGo's CardDAV/CalDAV
#    (native_pim_clients.py populate: cards of iOS, DAVx5 and Thunderbird, events
#    with their time zones, some all-day, some recurring with exceptions,
#    attendees, reminders). One device per server and collection is synced to the
#    end (as in 1.) and both servers' memory read (as in 3.); then the rest is PUT,
#    up to BENCH_CONTACTS and BENCH_EVENTS, so memory after the initial sync at two
#    sizes comes from one run.
# 1. The initial sync, for the address book and then the calendar: BENCH_DEVICES
#    (6) devices per server each synced to the end (FolderSync 0, Sync 0 of the
#    collection, Sync GetChanges with WindowSize 100 until no MoreAvailable, then
#    once more: the no-change Sync), the first BENCH_TIMED (3) of each server one
#    at a time, interleaved, and timed from Sync 0 to the last window (median
#    reported); the others PAR (3) at a time.
# 2. The no-change Sync: wrk repeating each device's last Sync (its current
#    SyncKey, GetChanges), -t1 -cBENCH_CONNS (20) -dBENCH_DURATION (10) s, a warm-up
#    and BENCH_ROUNDS (3) rounds interleaved (sogo, abqd, ...), the median round
#    reported with the ratio abqd / SOGo. Each round also reads the CPU time
#    (user + system, /proc/PID/stat) that abqd, sogod (with its workers) and
#    PostgreSQL (the cluster's processes, and the backends reaped meanwhile)
#    spent over it, per request answered: each of abqd's no-change Syncs costs
#    SOGo a DAV request (sync-collection).
# 3. Memory: abqd's VmRSS (and VmHWM), SOGo's VmRSS summed over sogod and its
#    workers: at the start, after the first size, after one device's initial sync
#    of each collection at the full size, after all, at the end.
#
# Pinning (2 cores): the servers (SOGo with PostgreSQL and memcached, Dovecot,
# abqd) on CPU BENCH_PIN_SUT (0), wrk and the clients on BENCH_PIN_LOAD (1).
# Results go to stdout and are appended to bench/out/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath -m "${BENCH_BUILD:-build-bench}") # relative to the tree, or absolute
ONLY=${BENCH_ONLY:-all}
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-20}
ROUNDS=${BENCH_ROUNDS:-3}
NC=${BENCH_CONTACTS:-2000}
NE=${BENCH_EVENTS:-5000}
NC1=${BENCH_CONTACTS_FIRST:-500}
NE1=${BENCH_EVENTS_FIRST:-1250}
NDEV=${BENCH_DEVICES:-6}
TIMED=${BENCH_TIMED:-3}
[ "$TIMED" -le "$NDEV" ] || TIMED=$NDEV
PAR=3
WRK_TIMEOUT=${BENCH_WRK_TIMEOUT:-30}
LOG=${BENCH_LOG:-warn}
BASE=${BENCH_PORT_BASE:-18900}
SUT=${BENCH_PIN_SUT:-0}
LOAD=${BENCH_PIN_LOAD:-1}
ABQ=$BASE ADM=$((BASE + 1))
[ "$NC1" -le "$NC" ] || NC1=$NC
[ "$NE1" -le "$NE" ] || NE1=$NE

. bench/lib.sh
need wrk wrk
need curl curl
[ "$(id -u)" = 0 ] || { echo "native_pim.sh: needs root (the SOGo fixture)" >&2; exit 1; }
tests/fixture/install.sh >/dev/null

build_native
# BENCH_ABQD: another abqd binary (a build with a change to measure) instead of the one built.
[ -z "${BENCH_ABQD:-}" ] || ABQD=$(realpath "$BENCH_ABQD")

fixture_up=
cleanup_more() {
	[ -z "${BENCH_LOG:-}" ] || cp "$tmp/abqd/stderr" bench/out/native-pim-abqd.log 2>/dev/null || true
	fixture_native_down
}
bench_init native-pim
fixture_native_up
SOGO_PATH=/${SOGO_URL#http://*/}
DAV_URL=http://127.0.0.1:$ABQ_FIX_SOGO_PORT/SOGo/dav/

mkdir -p "$tmp/abqd"
cat >"$tmp/abqd/abqd.conf" <<EOF
[eas]
listen = 127.0.0.1:$ABQ
workers = 1
max_connections_per_address = 100000
[upstream]
url = imap://127.0.0.1:$ABQ_FIX_IMAP_PORT
caldav = $DAV_URL
carddav = $DAV_URL
[store]
url = sqlite:abqd.db
[admin]
listen = 127.0.0.1:$ADM
[log]
level = $LOG
EOF
ctl() { "$ABQCTL" -c "$tmp/abqd/abqd.conf" "$@"; }
ctl init >/dev/null
ctl config global set attribute abqMode value Permissive >/dev/null
abqd_spawn "$tmp/abqd" taskset -c "$SUT"
wait_port "$ABQ"
apid=${pids[-1]} # the subshell execs taskset, which execs abqd
grep -q abqd "/proc/$apid/comm" || { echo "abqd pid not found"; exit 1; }
spid=$(cat "$tmp/fixture/sogo/sogod.pid")
pgpid=$(head -1 "$tmp/fixture/pg/postmaster.pid")

say "== native PIM benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cpus; SUT on cpu $SUT, load on cpu $LOAD; SOGo $(dpkg-query -W -f '${Version}' sogo 2>/dev/null) ($SOGO_URL, DAV $DAV_URL); alice's address book $NC cards ($NC1 first), calendar $NE events ($NE1 first); $NDEV devices ($TIMED timed); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
say "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
t_start=$(date +%s)

T_SOGO="sogo $ABQ_FIX_SOGO_PORT $SOGO_PATH"
T_ABQD="abqd $ABQ /Microsoft-Server-ActiveSync"
client() { taskset -c "$LOAD" python3 bench/native_pim_clients.py "$@"; }
median() { sort -n | awk 'NF { v[++n] = $1 } END { if (n) print v[int((n + 1) / 2)]; else print "none" }'; }

# pids_of NAME: the processes whose CPU counts for a server: abqd; sogod and
# its workers; the PostgreSQL cluster (postmaster and its backends).
pids_of() {
	case $1 in
	abqd) echo "$apid" ;;
	sogo) echo "$spid" $(pgrep -P "$spid" || true) ;;
	pg) echo "$pgpid" $(pgrep -P "$pgpid" || true) ;;
	esac
}
# ticks NAME: their user + system clock ticks so far, with those of the children
# sogod and the postmaster have reaped (PostgreSQL's backends come and go).
ticks() {
	local p t=0 v
	for p in $(pids_of "$1"); do
		v=$(cpu_ticks "$p" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	case $1 in
	sogo) p=$spid ;;
	pg) p=$pgpid ;;
	*) p= ;;
	esac
	[ -z "$p" ] || t=$((t + $(awk '{ print $16 + $17 }' "/proc/$p/stat")))
	echo "$t"
}
# memory LABEL: abqd's VmRSS and VmHWM, SOGo's VmRSS summed over sogod and its
# workers, as native_pim_rss_* lines.
memory() {
	local p r srss=0 sn=0
	say "native_pim_abqd_rss_kib_$1 $(rss_kib "$apid") (VmHWM $(awk '/^VmHWM/ { print $2 }' "/proc/$apid/status"))"
	for p in $(pids_of sogo); do
		r=$(rss_kib "$p" 2>/dev/null || echo 0)
		srss=$((srss + ${r:-0})) sn=$((sn + 1))
	done
	say "native_pim_sogo_rss_kib_$1 $srss (sum of $sn sogod processes)"
}
# wrk_run PORT ARGS... -> "rps p50_us p99_us requests errors" (errors:
# "non-2xx/connect+write+timeout"; read errors are left out: SOGo closes the
# connection after every answer, which wrk counts as one).
wrk_run() {
	local port=$1 secs=$2
	shift 2
	taskset -c "$LOAD" wrk -t1 -c"$CONNS" -d"$secs"s --timeout "$WRK_TIMEOUT"s --latency \
		-s bench/native_sync.lua "http://127.0.0.1:$port" -- "$@" >"$tmp/wrk.out"
	awk '/^RESULT/ { split($0, f, /[ =]/); print f[3], f[5], f[7], f[9], f[13] "/" f[11] - f[13] - f[15] }' "$tmp/wrk.out"
}
# rounds CLASS: the no-change Sync of the CLASS devices of both servers.
rounds() {
	local cls=$1 t r rps p50 p99 n err a0 s0 g0 a1 s1 g1 hz
	hz=$(getconf CLK_TCK)
	rm -f "$tmp/r.sogo" "$tmp/r.abqd"
	for t in "$T_SOGO" "$T_ABQD"; do
		set -- $t
		wrk_run "$2" 3 "$3" "$tmp/bodies.$cls.$1" >/dev/null
	done
	for r in $(seq "$ROUNDS"); do
		for t in "$T_SOGO" "$T_ABQD"; do
			set -- $t
			a0=$(ticks abqd) s0=$(ticks sogo) g0=$(ticks pg)
			read -r rps p50 p99 n err < <(wrk_run "$2" "$DUR" "$3" "$tmp/bodies.$cls.$1")
			a1=$(ticks abqd) s1=$(ticks sogo) g1=$(ticks pg)
			cpu=$(awk -v a=$((a1 - a0)) -v s=$((s1 - s0)) -v g=$((g1 - g0)) -v n="$n" -v hz="$hz" \
				'BEGIN { n = n > 0 ? n : 1; printf "abqd %.2f sogod %.2f postgres %.2f", a * 1000 / hz / n, s * 1000 / hz / n, g * 1000 / hz / n }')
			echo "$rps $p50 $p99 $cpu" >>"$tmp/r.$1"
			say "round $r $1 $cls: ${rps} req/s p50 ${p50} us p99 ${p99} us errors (non-2xx/other) ${err}; CPU ms per request: $cpu (no-change Sync, $NDEV devices, -t1 -c$CONNS -d${DUR}s)"
		done
	done
	for t in sogo abqd; do
		read -r rps p50 p99 cpu < <(sort -n "$tmp/r.$t" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)')
		eval "rps_$t=$rps p50_$t=$p50 p99_$t=$p99"
		say "native_pim_nochange_${cls}_cpu_ms_$t $cpu (the median round)"
	done
	say "native_pim_nochange_${cls}_rps_sogo $rps_sogo"
	say "native_pim_nochange_${cls}_rps_abqd $rps_abqd"
	say "native_pim_nochange_${cls}_ratio $(awk "BEGIN { printf \"%.2f\", $rps_abqd / $rps_sogo }")"
	say "native_pim_nochange_${cls}_p50_p99_us_sogo $p50_sogo $p99_sogo"
	say "native_pim_nochange_${cls}_p50_p99_us_abqd $p50_abqd $p99_abqd"
}
# initial CLASS PREFIX LABEL: one device per server synced to the end, timed.
initial_one() {
	local cls=$1 prefix=$2 label=$3 t
	for t in "$T_SOGO" "$T_ABQD"; do
		set -- $t
		client --port "$2" --path "$3" prep --class "$cls" --prefix "$prefix" --devices 1 --timed 1 \
			--bodies "$tmp/bodies.first.$cls.$1" | tee "$tmp/prep.first.$cls.$1" | sed "s/^/$1 $cls /"
		say "native_pim_initial_s_${cls}_${1}_$label $(sed -n 's/^initial .*seconds=\([0-9.]*\).*/\1/p' "$tmp/prep.first.$cls.$1") ($(sed -n 's/^initial .*\(windows=[0-9]*\) \(items=[0-9]*\).*/\1 \2/p' "$tmp/prep.first.$cls.$1"))"
	done
}
classes="Contacts Calendar"
[ "$ONLY" = all ] || classes=$ONLY

memory start
client populate --dav-port "$ABQ_FIX_SOGO_PORT" --contacts "$NC1" --events "$NE1" | tee -a "$out"
if [ "$NC1" -lt "$NC" ] || [ "$NE1" -lt "$NE" ]; then
	for cls in $classes; do
		initial_one "$cls" "FIRST$cls" "${NC1}_${NE1}"
	done
	memory "after_first_${NC1}_${NE1}"
	client populate --dav-port "$ABQ_FIX_SOGO_PORT" --contacts "$NC" --events "$NE" \
		--contacts-from "$NC1" --events-from "$NE1" | tee -a "$out"
fi

for cls in $classes; do
	rm -f "$tmp/prep.$cls.sogo" "$tmp/prep.$cls.abqd"
	for i in $(seq 0 $((TIMED - 1))); do
		for t in "$T_SOGO" "$T_ABQD"; do
			set -- $t
			client --port "$2" --path "$3" prep --class "$cls" --prefix "BENCH$cls" --start "$i" \
				--devices 1 --timed 1 --bodies "$tmp/bodies.$cls.$1.$i" |
				tee -a "$tmp/prep.$cls.$1" | sed "s/^/$1 $cls /"
		done
		[ "$i" != 0 ] || memory "after_one_initial_${cls}_${NC}_${NE}"
	done
	for t in "$T_SOGO" "$T_ABQD"; do
		set -- $t
		ppids=() rest=$((NDEV - TIMED)) s=$TIMED
		for k in $(seq 0 $((PAR - 1))); do
			n=$((rest / PAR + (k < rest % PAR ? 1 : 0)))
			[ "$n" -gt 0 ] || continue
			client --port "$2" --path "$3" prep --class "$cls" --prefix "BENCH$cls" --start "$s" \
				--devices "$n" --bodies "$tmp/bodies.$cls.$1.p$k" >"$tmp/prep.$cls.$1.p$k" &
			ppids+=($!)
			s=$((s + n))
		done
		for p in "${ppids[@]}"; do wait "$p"; done
		[ "$NDEV" -le "$TIMED" ] || cat "$tmp"/prep."$cls"."$1".p* | sed "s/^/$1 $cls /"
		cat "$tmp"/bodies."$cls"."$1".* >"$tmp/bodies.$cls.$1"
		say "$1 $cls: $(wc -l <"$tmp/bodies.$cls.$1") devices synced to the end; $(cat "$tmp/prep.$cls.$1" "$tmp"/prep."$cls"."$1".p* 2>/dev/null | grep repeat_statuses | sed 's/.*repeat_statuses[^=]*=//' | tr '\n' ' ')"
	done
	for t in sogo abqd; do
		s=$(sed -n 's/^initial .*seconds=\([0-9.]*\).*/\1/p' "$tmp/prep.$cls.$t")
		say "native_pim_initial_s_${cls}_$t $(echo "$s" | median) (of $(echo $s | tr ' ' ','); $(grep -h '^initial' "$tmp/prep.$cls.$t" | head -1 | sed 's/.*\(windows=[0-9]*\) \(items=[0-9]*\).*/\1 \2/'))"
	done
	say "native_pim_initial_${cls}_ratio $(awk "BEGIN { printf \"%.3f\", $(grep "native_pim_initial_s_${cls}_abqd " "$out" | tail -1 | cut -d' ' -f2) / $(grep "native_pim_initial_s_${cls}_sogo " "$out" | tail -1 | cut -d' ' -f2) }") (abqd / SOGo time)"
	for t in "$T_SOGO" "$T_ABQD"; do
		set -- $t
		say "$1 $cls $(client --port "$2" --path "$3" touch --bodies "$tmp/bodies.$cls.$1")"
	done
done
memory "after_all_initial_${NC}_${NE}"

for cls in $classes; do
	rounds "$cls"
done

memory end
say "native_pim_runtime_s $(($(date +%s) - t_start)); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
stderr_summary "$tmp/abqd/stderr"
