#!/bin/bash
# The quarantine mailbox benchmark (not a test), issues 4 and 8.
#
#   bench/mailbox.sh            # both parts
#   BENCH_ONLY=rps|held bench/mailbox.sh
#
# Needs the real upstream of tests/fixture (SOGo 5.8 + sogo-activesync; installed
# by tests/fixture/install.sh), and root, as the fixture does. A private fixture
# is started in this run's temporary folder on its own ports.
#
# 1. Quarantine-mailbox requests per second against the upstream's own rate for
#    the same command. wrk (bench/mailbox.lua) sends the phone's FolderSync with
#    SyncKey 0, the DeviceId rotating over 20 ids, to SOGo directly and to abqd,
#    where the devices are Quarantined (mode Interactive) and answered by abqd's
#    quarantine mailbox; the upstream only sees abqd's auth probe (cached).
#    Rounds interleaved (sogo, abqd, ...), median round reported, p50/p99 by wrk.
# 2. 10,000 Pings held by the quarantine mailbox (BENCH_HELD_DEVICES devices x
#    BENCH_HELD_PER each, 100 x 100): bench/mailbox_clients.py prepares each
#    device as a phone does (FolderSync 0, Sync 0, Sync GetChanges: the alert),
#    then opens the Pings from 127.0.0.2..51. Established connections by ss,
#    abqd's VmRSS per held Ping and its CPU over 10 s idle; then
#    `abqctl mobile abq allow` of the first device and the time until each of its
#    Pings is answered (Status 7), then `block` of the second (Status 129);
#    min/median/max from just before abqctl starts. Then every phone goes away
#    and abqd's connection count is read again.
#
# Pinning (2 cores): the server under test (SOGo and its PostgreSQL, memcached
# and Dovecot; abqd) on CPU BENCH_PIN_SUT (0); wrk and the clients on
# BENCH_PIN_LOAD (1). Ports BENCH_PORT_BASE.. (18700..18714). Results go to
# stdout and are appended to bench/out/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath -m "${BENCH_BUILD:-build-bench}") # relative to the tree, or absolute
ONLY=${BENCH_ONLY:-all}
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-50}
ROUNDS=${BENCH_ROUNDS:-3}
NDEV=${BENCH_HELD_DEVICES:-100}
PER=${BENCH_HELD_PER:-100}
BASE=${BENCH_PORT_BASE:-18700}
SUT=${BENCH_PIN_SUT:-0}
LOAD=${BENCH_PIN_LOAD:-1}
ABQ=$BASE ADM=$((BASE + 1)) ABQH=$((BASE + 2)) ADMH=$((BASE + 3))

. bench/lib.sh
need wrk wrk
need curl curl
need ss iproute2
[ "$(id -u)" = 0 ] || { echo "mailbox.sh: needs root (the SOGo fixture)" >&2; exit 1; }
tests/fixture/install.sh >/dev/null

build_release abqd abqctl
ABQD=$B/src/daemon/abqd
ABQCTL=$B/src/ctl/abqctl
[ -x "$ABQCTL" ] || ABQCTL=$(find "$B" -name abqctl -type f -perm -u+x | head -1)

fixture_up=
cleanup_more() {
	[ -z "$fixture_up" ] || tests/fixture/upstream.sh down --dir "$tmp/fixture" >/dev/null 2>&1 || true
}
bench_init mailbox
chmod 755 "$tmp" # the fixture's daemons run as their own users
export ABQ_FIX_SOGO_PORT=$((BASE + 10)) ABQ_FIX_PG_PORT=$((BASE + 11))
export ABQ_FIX_IMAP_PORT=$((BASE + 12)) ABQ_FIX_MEMCACHED_PORT=$((BASE + 13))
export ABQ_FIX_SMTP_PORT=$((BASE + 14))

# The upstream: SOGo, its database, IMAP and cache pinned with it.
fixture_up=1
taskset -c "$SUT" tests/fixture/upstream.sh up --dir "$tmp/fixture" >"$tmp/fixture.out" 2>&1 ||
	{ cat "$tmp/fixture.out"; exit 1; }
SOGO_URL=$(grep '^http://' "$tmp/fixture.out" | tail -1)
SOGO_PATH=/${SOGO_URL#http://*/}

abqd_conf() { # NAME PORT ADMIN
	mkdir -p "$tmp/$1"
	cat >"$tmp/$1/abqd.conf" <<-EOF
		[eas]
		listen = 127.0.0.1:$2
		workers = 1
		default_domain = example.test
		max_connections_per_address = 100000
		[upstream]
		url = $SOGO_URL
		[auth]
		method = upstream
		[store]
		url = sqlite:abqd.db
		[smtp]
		url = smtp://127.0.0.1:$ABQ_FIX_SMTP_PORT
		[admin]
		listen = 127.0.0.1:$3
		[log]
		level = warn
	EOF
}
ctl() { "$ABQCTL" -c "$tmp/$1/abqd.conf" "${@:2}"; }
abqd_start() { # NAME PORT ADMIN
	abqd_conf "$@"
	ctl "$1" init >/dev/null
	ctl "$1" config global set attribute abqMode value Interactive >/dev/null
	abqd_spawn "$tmp/$1" taskset -c "$SUT"
	wait_port "$2"
	# The subshell execs taskset, which execs abqd: the last pid is abqd itself.
	apid=${pids[-1]}
	grep -q abqd "/proc/$apid/comm" || { echo "abqd pid not found"; exit 1; }
}
abqd_stop() {
	stderr_summary "$tmp/$1/stderr"
	kill "$apid"
	wait "$apid" 2>/dev/null || true
}

say "== mailbox benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cpus; SUT on cpu $SUT, load on cpu $LOAD; upstream SOGo $(dpkg-query -W -f '${Version}' sogo 2>/dev/null) ($SOGO_URL), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"

if [ "$ONLY" != held ]; then
	abqd_start abqd "$ABQ" "$ADM"
	for t in "sogo $ABQ_FIX_SOGO_PORT $SOGO_PATH" "abqd $ABQ /Microsoft-Server-ActiveSync"; do
		set -- $t
		code=$(printf '\x03\x01\x6a\x00\x00\x07\x56\x52\x03\x30\x00\x01\x01' |
			curl -s -o "$tmp/probe.$1" -w '%{http_code}' -u alice:secret \
				-H 'MS-ASProtocolVersion: 14.1' -H 'Content-Type: application/vnd.ms-sync.wbxml' \
				--data-binary @- "http://127.0.0.1:$2$3?Cmd=FolderSync&User=alice&DeviceId=BENCHMPROBE&DeviceType=iPhone")
		folders=$(wbxml2xml -l ACTIVESYNC -o - "$tmp/probe.$1" 2>/dev/null | grep -c '<DisplayName>' || true)
		echo "probe $1: HTTP $code, $(wc -c <"$tmp/probe.$1") bytes, $folders folders$(grep -q abq-inbox "$tmp/probe.$1" && echo ', the quarantine mailbox (abq-inbox)')"
		[ "$code" = 200 ] || { echo "probe $1 failed"; cat "$tmp/abqd/stderr"; exit 1; }
	done
	say "abqd device BENCHMPROBE: $(ctl abqd mobile abq list | grep -i benchmprobe | tr -s ' ' | cut -c1-120)"

	# wrk_run PORT PATH CONNS SECONDS -> "rps p50_us p99_us errors"; errors:
	# "non-2xx/connect+write+timeout" (read errors are left out: SOGo closes the
	# connection after every answer, which wrk counts as one).
	wrk_run() {
		taskset -c "$LOAD" wrk -t1 -c"$3" -d"$4"s --latency -s bench/mailbox.lua \
			"http://127.0.0.1:$1" -- "$2" BENCHM 20 >"$tmp/wrk.out"
		awk '/^RESULT/ { split($0, f, /[ =]/); print f[3], f[5], f[7], f[13] "/" f[11] - f[13] - f[15] }' "$tmp/wrk.out"
	}
	T_SOGO="sogo $ABQ_FIX_SOGO_PORT $SOGO_PATH"
	T_ABQD="abqd $ABQ /Microsoft-Server-ActiveSync"
	for t in "$T_SOGO" "$T_ABQD"; do
		set -- $t
		wrk_run "$2" "$3" "$CONNS" 3 >/dev/null # warm-up: every DeviceId seen, auth cached
	done
	for r in $(seq "$ROUNDS"); do
		for t in "$T_SOGO" "$T_ABQD"; do
			set -- $t
			read -r rps p50 p99 err < <(wrk_run "$2" "$3" "$CONNS" "$DUR")
			echo "$rps $p50 $p99" >>"$tmp/r.$1"
			say "round $r $1: ${rps} req/s p50 ${p50} us p99 ${p99} us errors (non-2xx/other) ${err} (FolderSync 0, -t1 -c$CONNS -d${DUR}s)"
		done
	done
	for t in sogo abqd; do
		read -r rps p50 p99 < <(sort -n "$tmp/r.$t" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)')
		eval "rps_$t=$rps p50_$t=$p50 p99_$t=$p99"
	done
	for t in "$T_SOGO" "$T_ABQD"; do
		set -- $t
		read -r rps p50 p99 err < <(wrk_run "$2" "$3" 1 5)
		eval "c1_rps_$1=$rps c1_p50_$1=$p50 c1_p99_$1=$p99"
		say "1 connection $1: ${rps} req/s p50 ${p50} us p99 ${p99} us errors (non-2xx/other) ${err}"
	done
	say "mailbox_rps_upstream $rps_sogo"
	say "mailbox_rps_abqd $rps_abqd"
	say "mailbox_ratio $(awk "BEGIN { printf \"%.1f\", $rps_abqd / $rps_sogo }")"
	say "mailbox_p50_us_upstream $p50_sogo"
	say "mailbox_p99_us_upstream $p99_sogo"
	say "mailbox_p50_us_abqd $p50_abqd"
	say "mailbox_p99_us_abqd $p99_abqd"
	say "mailbox_c1_rps_upstream $c1_rps_sogo"
	say "mailbox_c1_rps_abqd $c1_rps_abqd"
	say "mailbox_c1_ratio $(awk "BEGIN { printf \"%.1f\", $c1_rps_abqd / $c1_rps_sogo }")"
	say "mailbox_c1_p50_us_upstream $c1_p50_sogo"
	say "mailbox_c1_p50_us_abqd $c1_p50_abqd"
	say "mailbox_c1_p99_us_upstream $c1_p99_sogo"
	say "mailbox_c1_p99_us_abqd $c1_p99_abqd"
	abqd_stop abqd
fi

if [ "$ONLY" != rps ]; then
	N=$((NDEV * PER))
	abqd_start abqh "$ABQH" "$ADMH"
	say "abqd RLIMIT_NOFILE $(awk '/Max open files/ { print $4 }' "/proc/$apid/limits")"
	taskset -c "$LOAD" python3 bench/mailbox_clients.py --port "$ABQH" --devices "$NDEV" prep | tee -a "$out"
	sleep 1
	rss0=$(rss_kib "$apid")
	taskset -c "$LOAD" python3 bench/mailbox_clients.py --port "$ABQH" --devices "$NDEV" hold \
		--per "$PER" >"$tmp/clients.log" 2>&1 &
	cpid=$!
	pids+=($cpid)
	for _ in $(seq 900); do grep -q '^clients opened' "$tmp/clients.log" && break; sleep 0.2; done
	say "$(grep '^clients' "$tmp/clients.log" || cat "$tmp/clients.log")"
	grep '^early' "$tmp/clients.log" || true
	sleep 2
	front=$(estab "sport = :$ABQH")
	up=$(estab "dport = :$ABQ_FIX_SOGO_PORT")
	rss1=$(rss_kib "$apid")
	fds=$(ls "/proc/$apid/fd" | wc -l)
	t0=$(cpu_ticks "$apid")
	sleep 10
	t1=$(cpu_ticks "$apid")
	hz=$(getconf CLK_TCK)
	say "held10k_requested $N"
	say "held10k_front_connections $front"
	say "held10k_upstream_connections $up"
	say "held10k_abqd_fds $fds"
	say "held10k_rss_before_kib $rss0"
	say "held10k_rss_after_kib $rss1"
	say "held10k_kib_per_ping $(awk "BEGIN { printf \"%.1f\", ($rss1 - $rss0) / ($front > 0 ? $front : 1) }")"
	say "held10k_idle_cpu_percent_10s $(awk "BEGIN { printf \"%.2f\", ($t1 - $t0) * 100 / $hz / 10 }")"

	# change VERB DEVICE STATUS NAME: abqctl, then wait for all $PER answers of DEVICE.
	change() {
		local before ts te
		before=$(grep -c "^answer $2 " "$tmp/clients.log" || true)
		ts=$(date +%s.%N)
		ctl abqh mobile abq "$1" "$2" >/dev/null
		te=$(date +%s.%N)
		for _ in $(seq 200); do
			[ "$(grep -c "^answer $2 " "$tmp/clients.log" || true)" -ge $((before + PER)) ] && break
			sleep 0.05
		done
		grep "^answer $2 " "$tmp/clients.log" | awk -v ts="$ts" '{ printf "%.1f %s/%s\n", ($5 - ts) * 1000, $3, $4 }' |
			sort -n >"$tmp/t.$4"
		local n st
		n=$(wc -l <"$tmp/t.$4")
		st=$(awk '{ print $2 }' "$tmp/t.$4" | sort | uniq -c | awk '{ printf "%s%s x%d", (NR > 1 ? ", " : ""), $2, $1 }')
		say "$4: abqctl $1 $2 took $(awk "BEGIN { printf \"%.0f\", ($te - $ts) * 1000 }") ms; $n of $PER Pings answered ($st)"
		awk -v p="held10k_$4" '{ v[NR] = $1 } END {
			printf "%s_change_to_answer_ms_min %s\n%s_change_to_answer_ms_median %s\n%s_change_to_answer_ms_max %s\n",
				p, v[1], p, v[int((NR + 1) / 2)], p, v[NR] }' "$tmp/t.$4" | tee -a "$out"
	}
	change allow "$(printf 'BENCHQ%03d' 0)" 7 allow
	change block "$(printf 'BENCHQ%03d' 1)" 129 block
	still=$(($(estab "sport = :$ABQH")))
	say "held10k_after_changes_front_connections $still"
	other=$(grep -c '^answer' "$tmp/clients.log" || true)
	say "held10k_answers_total $other (expected $((2 * PER)))"
	# The headline: the slower of the two changes.
	say "held10k_change_to_answer_ms_max $(cat "$tmp/t.allow" "$tmp/t.block" | sort -n | tail -1 | cut -d' ' -f1)"

	kill "$cpid"
	wait "$cpid" 2>/dev/null || true
	sleep 3
	say "held10k_after_close_front_connections $(estab "sport = :$ABQH")"
	say "held10k_after_close_abqd_fds $(ls "/proc/$apid/fd" | wc -l)"
	say "held10k_after_close_rss_kib $(rss_kib "$apid")"
	abqd_stop abqh
fi
