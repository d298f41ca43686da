#!/bin/bash
# The native mode benchmark (not a test): abqd as the ActiveSync server over IMAP
# against SOGo's ActiveSync, both on the same Dovecot and the same mailbox.
#
#   bench/native.sh
#   BENCH_MESSAGES=2000 BENCH_ROUNDS=3 BENCH_DURATION=10 bench/native.sh
#   BENCH_ONLY=foldersync|sync|push|attach bench/native.sh   (sync: also the initial sync)
#   BENCH_MESSAGES=10000 BENCH_MESSAGES_FIRST=2000 BENCH_DEVICES=3 BENCH_DURATION=20 \
#     bench/native.sh   (the 10,000-message Inbox, about 26 minutes)
#   BENCH_LOG=debug BENCH_PUSH_HEARTBEAT=60 BENCH_ONLY=push bench/native.sh
#     (abqd's log kept in bench/out/native-abqd.log)
#
# About 14 minutes with the defaults, most of it SOGo syncing its 20 devices
# (about a minute each alone; the 17 after the first 3 six at a time, its worker
# count). SOGo takes about 2.5 s per window of 100 messages, so at 10,000 messages
# a device takes it 4-5 minutes: sync fewer there (BENCH_DEVICES, BENCH_TIMED).
#
# Needs the real upstream of tests/fixture (SOGo 5.8 + sogo-activesync, Dovecot;
# installed by tests/fixture/install.sh), and root, as the fixture does. A
# private fixture is started in this run's temporary folder on its own ports
# (BENCH_PORT_BASE.., 18800..18816), alice's INBOX seeded with BENCH_MESSAGES
# (2000) generated messages (upstream.sh seed-bulk; with BENCH_MESSAGES_FIRST, that
# many first, see 0.). abqd runs in native mode
# (`[upstream] url = imap://` the private Dovecot, Permissive: the devices are
# Allowed, max_connections_per_account by default), one worker; SOGo is asked
# directly. The same phone requests go to both (bench/native_clients.py,
# bench/native_sync.lua, bench/mailbox.lua):
#
# 0. With BENCH_MESSAGES_FIRST (say 2000) below BENCH_MESSAGES: the Inbox holds
#    that many first, one device per server is synced to the end (timed as in 3.)
#    and both servers' memory read (as in 6.), then the rest is seeded, so memory
#    after the initial sync of the two sizes comes from one run.
# 1. FolderSync 0: requests/s, p50/p99 by wrk, the DeviceId rotating over 20.
# 2. The no-change Sync of the Inbox: BENCH_DEVICES (20) devices each synced to the end once
#    (FolderSync 0, Sync 0, Sync GetChanges, WindowSize 100, BodyPreference
#    Type 1 TruncationSize 5000, until no MoreAvailable, then once more), then
#    wrk repeating each device's last Sync (its current SyncKey, GetChanges).
#    The first BENCH_TIMED (3) devices of each server are synced one at a time,
#    interleaved:
# 3. the initial sync: wall time from Sync 0 to the last window, median of
#    BENCH_TIMED; memory read (as in 6.) after the first device and after all.
# 4. Push: a device synced to the end holds a Ping on the Inbox (heartbeat 300;
#    the private SOGo's SOGoMaximumPingInterval is raised to 300 to accept it, its
#    SOGoInternalSyncInterval stays the fixture's 5 s); a message is APPENDed over
#    IMAP and the time until the Ping's answer taken, BENCH_PUSH_TIMES (5) times;
#    a Ping unanswered BENCH_PUSH_GIVE_UP (30) s after the APPEND is given up
#    (closed) and counted as not pushed.
# 5. A 10 MB attachment (BENCH_ATTACH_MB, 10 MiB): a message with it APPENDed to the
#    Inbox over IMAP; a device synced to the end (the push device) syncs it, and the
#    FileReference of its attachment is taken from each server's own Sync answer;
#    then ItemOperations Fetch of it, BENCH_ATTACH_TIMES (5) times interleaved: the
#    seconds per fetch, the Data checked to be the attachment's bytes, each
#    server's VmRSS (SOGo: summed over sogod) sampled every 20 ms meanwhile.
# 6. abqd's VmRSS (and VmHWM) after the runs, and the sum of SOGo's sogod
#    processes' VmRSS; also read at the start and before 5.
#
# Rounds interleaved (sogo, abqd, ...), median round reported with the ratio
# abqd / SOGo; wrk waits BENCH_WRK_TIMEOUT (30) s for an answer (SOGo's slowest
# take over wrk's default 2 s at 10,000 messages). Pinning (2 cores): the servers under test (SOGo with its
# PostgreSQL and memcached, Dovecot, abqd) on CPU BENCH_PIN_SUT (0); wrk and the
# clients on BENCH_PIN_LOAD (1). Results go to stdout and are appended to
# bench/out/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath -m "${BENCH_BUILD:-build-bench}") # relative to the tree, or absolute
ONLY=${BENCH_ONLY:-all}
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-50}
ROUNDS=${BENCH_ROUNDS:-3}
N=${BENCH_MESSAGES:-2000}
N1=${BENCH_MESSAGES_FIRST:-}
NDEV=${BENCH_DEVICES:-20}
TIMED=${BENCH_TIMED:-3}
[ "$TIMED" -le "$NDEV" ] || TIMED=$NDEV
WRK_TIMEOUT=${BENCH_WRK_TIMEOUT:-30}
ATTACH_MB=${BENCH_ATTACH_MB:-10}
ATTACH_TIMES=${BENCH_ATTACH_TIMES:-5}
PAR=6
PUSH_TIMES=${BENCH_PUSH_TIMES:-5}
HEARTBEAT=${BENCH_PUSH_HEARTBEAT:-300}
GIVE_UP=${BENCH_PUSH_GIVE_UP:-30}
LOG=${BENCH_LOG:-warn}
BASE=${BENCH_PORT_BASE:-18800}
SUT=${BENCH_PIN_SUT:-0}
LOAD=${BENCH_PIN_LOAD:-1}
ABQ=$BASE ADM=$((BASE + 1))

. bench/lib.sh
need wrk wrk
need curl curl
[ "$(id -u)" = 0 ] || { echo "native.sh: needs root (the SOGo fixture)" >&2; exit 1; }
tests/fixture/install.sh >/dev/null

build_native

fixture_up=
cleanup_more() {
	# abqd's log kept when a level was asked for (BENCH_LOG=debug).
	[ -z "${BENCH_LOG:-}" ] || cp "$tmp/abqd/stderr" bench/out/native-abqd.log 2>/dev/null || true
	fixture_native_down
}
bench_init native
# The upstream: SOGo, its database, IMAP and cache pinned with abqd.
export ABQ_FIX_MAX_PING=300
fixture_native_up
SOGO_PATH=/${SOGO_URL#http://*/}
if [ -n "$N1" ] && [ "$N1" -lt "$N" ]; then
	tests/fixture/upstream.sh seed-bulk alice INBOX "$N1" --dir "$tmp/fixture" | tail -1
else
	N1=
	tests/fixture/upstream.sh seed-bulk alice INBOX "$N" --dir "$tmp/fixture" | tail -1
fi

mkdir -p "$tmp/abqd"
cat >"$tmp/abqd/abqd.conf" <<EOF
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
level = $LOG
EOF
ctl() { "$ABQCTL" -c "$tmp/abqd/abqd.conf" "$@"; }
ctl init >/dev/null
ctl config global set attribute abqMode value Permissive >/dev/null
abqd_spawn "$tmp/abqd" taskset -c "$SUT"
wait_port "$ABQ"
apid=${pids[-1]} # the subshell execs taskset, which execs abqd
grep -q abqd "/proc/$apid/comm" || { echo "abqd pid not found"; exit 1; }

say "== native benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cpus; SUT on cpu $SUT, load on cpu $LOAD; SOGo $(dpkg-query -W -f '${Version}' sogo 2>/dev/null) ($SOGO_URL), Dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1) 127.0.0.1:$ABQ_FIX_IMAP_PORT, alice's INBOX $N messages${N1:+ ($N1 first)}, $NDEV devices ($TIMED timed), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
say "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
t_start=$(date +%s)

T_SOGO="sogo $ABQ_FIX_SOGO_PORT $SOGO_PATH"
T_ABQD="abqd $ABQ /Microsoft-Server-ActiveSync"
client() { taskset -c "$LOAD" python3 bench/native_clients.py "$@"; }

# wrk_run SCRIPT PORT CONNS SECONDS ARGS... -> "rps p50_us p99_us errors" (a request
# unanswered after BENCH_WRK_TIMEOUT (30) s is a timeout, not wrk's 2 s);
# errors: "non-2xx/connect+write+timeout" (read errors are left out: SOGo closes
# the connection after every answer, which wrk counts as one).
wrk_run() {
	local script=$1 port=$2 conns=$3 secs=$4
	shift 4
	taskset -c "$LOAD" wrk -t1 -c"$conns" -d"$secs"s --timeout "$WRK_TIMEOUT"s --latency -s "$script" \
		"http://127.0.0.1:$port" -- "$@" >"$tmp/wrk.out"
	awk '/^RESULT/ { split($0, f, /[ =]/); print f[3], f[5], f[7], f[13] "/" f[11] - f[13] - f[15] }' "$tmp/wrk.out"
}
# rounds NAME WHAT SCRIPT ARGS-FOR-sogo ARGS-FOR-abqd: warm-up, $ROUNDS
# interleaved rounds, the median round of each and the ratio as NAME_* lines.
rounds() {
	local name=$1 what=$2 script=$3 asogo=$4 aabqd=$5 t r rps p50 p99 err
	rm -f "$tmp/r.sogo" "$tmp/r.abqd"
	for t in "$T_SOGO $asogo" "$T_ABQD $aabqd"; do
		set -- $t
		wrk_run "$script" "$2" "$CONNS" 3 "${@:4}" >/dev/null
	done
	for r in $(seq "$ROUNDS"); do
		for t in "$T_SOGO $asogo" "$T_ABQD $aabqd"; do
			set -- $t
			read -r rps p50 p99 err < <(wrk_run "$script" "$2" "$CONNS" "$DUR" "${@:4}")
			echo "$rps $p50 $p99" >>"$tmp/r.$1"
			say "round $r $1: ${rps} req/s p50 ${p50} us p99 ${p99} us errors (non-2xx/other) ${err} ($what, -t1 -c$CONNS -d${DUR}s)"
		done
	done
	for t in sogo abqd; do
		read -r rps p50 p99 < <(sort -n "$tmp/r.$t" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)')
		eval "rps_$t=$rps p50_$t=$p50 p99_$t=$p99"
	done
	say "${name}_rps_sogo $rps_sogo"
	say "${name}_rps_abqd $rps_abqd"
	say "${name}_ratio $(awk "BEGIN { printf \"%.2f\", $rps_abqd / $rps_sogo }")"
	say "${name}_p50_us_sogo $p50_sogo"
	say "${name}_p99_us_sogo $p99_sogo"
	say "${name}_p50_us_abqd $p50_abqd"
	say "${name}_p99_us_abqd $p99_abqd"
}
median() { sort -n | awk 'NF { v[++n] = $1 } END { if (n) print v[int((n + 1) / 2)]; else print "none" }'; }
# range: "min-max" of the numbers on stdin.
range() { sort -n | awk 'NF { v[++n] = $1 } END { if (n) print v[1] "-" v[n]; else print "none" }'; }
spid=$(cat "$tmp/fixture/sogo/sogod.pid" 2>/dev/null || true)
# memory LABEL: abqd's VmRSS and VmHWM, SOGo's VmRSS summed over sogod and its
# children, as native_rss_* lines.
memory() {
	local p r srss=0 sn=0
	say "native_abqd_rss_kib_$1 $(rss_kib "$apid") (VmHWM $(awk '/^VmHWM/ { print $2 }' "/proc/$apid/status"))"
	[ -n "$spid" ] || return 0
	for p in "$spid" $(pgrep -P "$spid" || true); do
		r=$(rss_kib "$p" 2>/dev/null || echo 0)
		srss=$((srss + ${r:-0})) sn=$((sn + 1))
	done
	say "native_sogo_rss_kib_$1 $srss (sum of $sn sogod processes)"
}
memory start

# 0. The first part of the Inbox: one device each synced to the end, memory.
if [ -n "$N1" ]; then
	for t in "$T_SOGO" "$T_ABQD"; do
		set -- $t
		client --port "$2" --path "$3" prep --prefix BENCHF --start 0 --devices 1 --timed 1 \
			--bodies "$tmp/bodies.first.$1" | tee -a "$tmp/prep.first.$1" | sed "s/^/$1 /"
	done
	for t in sogo abqd; do
		say "native_initial_sync_s_${t}_$N1 $(grep -h '^initial' "$tmp/prep.first.$t" | sed 's/.*seconds=\([0-9.]*\).*/\1/') ($(grep -h '^initial' "$tmp/prep.first.$t" | sed 's/.*\(windows=[0-9]*\) \(items=[0-9]*\).*/\1 \2/'))"
	done
	memory "after_one_initial_$N1"
	tests/fixture/upstream.sh seed-bulk alice INBOX "$((N - N1))" --dir "$tmp/fixture" | tail -1
fi

# 1. FolderSync 0.
if [ "$ONLY" = all ] || [ "$ONLY" = foldersync ]; then
	rounds native_foldersync "FolderSync 0" bench/mailbox.lua "$SOGO_PATH BENCHF 20" \
		"/Microsoft-Server-ActiveSync BENCHF 20"
fi

# 2 and 3. The initial sync, then the no-change Sync.
if [ "$ONLY" = all ] || [ "$ONLY" = sync ]; then
	for i in $(seq 0 $((TIMED - 1))); do
		for t in "$T_SOGO" "$T_ABQD"; do
			set -- $t
			client --port "$2" --path "$3" prep --prefix BENCHN --start "$i" --devices 1 --timed 1 \
				--bodies "$tmp/bodies.$1.$i" | tee -a "$tmp/prep.$1" | sed "s/^/$1 /"
		done
		[ "$i" != 0 ] || memory "after_one_initial_$N"
	done
	for t in "$T_SOGO" "$T_ABQD"; do
		set -- $t
		# The other devices, PAR clients at a time (SOGo's 6 workers; only the
		# servers' time counts here, and SOGo's is mostly waiting).
		ppids=() rest=$((NDEV - TIMED)) s=$TIMED
		for k in $(seq 0 $((PAR - 1))); do
			n=$((rest / PAR + (k < rest % PAR ? 1 : 0)))
			[ "$n" -gt 0 ] || continue
			client --port "$2" --path "$3" prep --prefix BENCHN --start "$s" --devices "$n" \
				--bodies "$tmp/bodies.$1.p$k" >"$tmp/prep.$1.p$k" &
			ppids+=($!)
			s=$((s + n))
		done
		for p in "${ppids[@]}"; do wait "$p"; done
		[ "$NDEV" -le "$TIMED" ] || cat "$tmp"/prep."$1".p* | sed "s/^/$1 /"
		cat "$tmp"/bodies."$1".* >"$tmp/bodies.$1"
		say "$1: $(wc -l <"$tmp/bodies.$1") devices synced to the end; $(cat "$tmp/prep.$1" "$tmp"/prep."$1".p* 2>/dev/null | grep repeat_statuses | sed 's/.*repeat_statuses[^=]*=//' | tr '\n' ' ')"
	done
	for t in sogo abqd; do
		s=$(grep -h '^initial' "$tmp/prep.$t" | sed 's/.*seconds=\([0-9.]*\).*/\1/')
		say "native_initial_sync_s_$t $(echo "$s" | median) (of $(echo $s | tr ' ' ','); $(grep -h '^initial' "$tmp/prep.$t" | head -1 | sed 's/.*\(windows=[0-9]*\) \(items=[0-9]*\).*/\1 \2/'))"
	done
	say "native_initial_sync_ratio $(awk "BEGIN { printf \"%.3f\", $(grep 'native_initial_sync_s_abqd ' "$out" | tail -1 | cut -d' ' -f2) / $(grep 'native_initial_sync_s_sogo ' "$out" | tail -1 | cut -d' ' -f2) }") (abqd / SOGo time)"
	memory "after_all_initial_$N"
	# A sample of the repeated no-change Sync, by curl: the HTTP status and size.
	for t in "$T_SOGO" "$T_ABQD"; do
		set -- $t
		read -r dev hex _ < <(tail -1 "$tmp/bodies.$1")
		code=$(echo "$hex" | xxd -r -p | curl -s -o "$tmp/sample.$1" -w '%{http_code}' -u alice:secret \
			-H 'MS-ASProtocolVersion: 14.1' -H 'Content-Type: application/vnd.ms-sync.wbxml' \
			-H 'X-MS-PolicyKey: 0' --data-binary @- \
			"http://127.0.0.1:$2$3?Cmd=Sync&User=alice&DeviceId=$dev&DeviceType=iPhone")
		say "sample no-change Sync $1 $dev: HTTP $code, $(wc -c <"$tmp/sample.$1") bytes"
	done
	rounds native_nochange_sync "no-change Sync, $NDEV devices" bench/native_sync.lua \
		"$SOGO_PATH $tmp/bodies.sogo" "/Microsoft-Server-ActiveSync $tmp/bodies.abqd"
fi

# 4. Push.
if [ "$ONLY" = all ] || [ "$ONLY" = push ]; then
	rm -f "$tmp/push.sogo" "$tmp/push.abqd"
	# The first device of the sync part, already synced to the end, if it ran.
	pdev=BENCHP
	for t in sogo abqd; do
		if [ -s "$tmp/bodies.$t.0" ]; then
			pdev=BENCHN00
			awk 'NR == 1 { print $3, $4 }' "$tmp/bodies.$t.0" >"$tmp/push.state.$t"
		fi
	done
	for i in $(seq "$PUSH_TIMES"); do
		for t in "$T_SOGO" "$T_ABQD"; do
			set -- $t
			client --port "$2" --path "$3" push --device "$pdev" --imap-port "$ABQ_FIX_IMAP_PORT" --state "$tmp/push.state.$1" \
				--times 1 --heartbeat "$HEARTBEAT" --give-up "$GIVE_UP" | tee -a "$tmp/push.$1" | sed "s/^/round $i $1 /" | tee -a "$out"
		done
	done
	for t in sogo abqd; do
		ms=$(grep -h '^push .* status=2' "$tmp/push.$t" | sed 's/.*ms=\([0-9]*\).*/\1/' || true)
		say "native_push_ms_$t $(echo "$ms" | median) (median of the $(echo "$ms" | grep -c . || true) of $PUSH_TIMES Pings answered with Status 2: $(echo $ms | tr ' ' ','))"
	done
fi

# 5. The attachment.
if [ "$ONLY" = all ] || [ "$ONLY" = attach ]; then
	adev=BENCHP
	for t in sogo abqd; do
		[ -s "$tmp/push.state.$t" ] && adev=BENCHN00
		if [ ! -s "$tmp/push.state.$t" ] && [ -s "$tmp/bodies.$t.0" ]; then
			adev=BENCHN00
			awk 'NR == 1 { print $3, $4 }' "$tmp/bodies.$t.0" >"$tmp/push.state.$t"
		fi
	done
	memory before_attach
	client --port 0 append-big --imap-port "$ABQ_FIX_IMAP_PORT" --mb "$ATTACH_MB"
	rm -f "$tmp/attach.sogo" "$tmp/attach.abqd"
	for i in $(seq "$ATTACH_TIMES"); do
		for t in "$T_SOGO" "$T_ABQD"; do
			set -- $t
			if [ "$1" = sogo ]; then rpid="--rss-pid $spid --rss-children"; else rpid="--rss-pid $apid"; fi
			client --port "$2" --path "$3" attach --device "$adev" --state "$tmp/push.state.$1" \
				--ref "$tmp/attach.ref.$1" --mb "$ATTACH_MB" $rpid | tee -a "$tmp/attach.$1" |
				sed "s/^/round $i $1 /" | tee -a "$out"
		done
	done
	for t in sogo abqd; do
		say "$t FileReference $(cat "$tmp/attach.ref.$t" 2>/dev/null)"
		f() { grep -h '^attach .* same=yes' "$tmp/attach.$t" | sed "s/.* $1=\([0-9.]*\).*/\1/" || true; }
		s=$(f seconds)
		say "native_attach_s_$t $(echo "$s" | median) (median of the $(echo "$s" | grep -c . || true) of $ATTACH_TIMES fetches with the whole attachment: $(echo $s | tr ' ' ','))"
		before=$(f rss_before_kib | range) peak=$(f rss_peak_kib | range)
		say "native_attach_rss_kib_$t before $before peak $peak (VmRSS$([ "$t" = sogo ] && echo ', summed over sogod'))"
	done
	say "native_attach_ratio $(awk "BEGIN { printf \"%.3f\", $(grep 'native_attach_s_abqd ' "$out" | tail -1 | cut -d' ' -f2) / $(grep 'native_attach_s_sogo ' "$out" | tail -1 | cut -d' ' -f2) }") (abqd / SOGo time)"
fi

# 6. Memory.
memory end
say "native_runtime_s $(($(date +%s) - t_start)); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
stderr_summary "$tmp/abqd/stderr"
