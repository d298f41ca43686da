#!/bin/bash
# The held-phones benchmark (not a test), issue 8: 50,000 held Pings in one run,
# half proxied (held by the upstream), half held by the quarantine mailbox.
#
#   bench/held.sh                          # 50,000 held (BENCH_HELD_TOTAL)
#   BENCH_HELD_TOTAL=4000 bench/held.sh    # a quick run
#
# Needs root (a private network namespace). Knobs:
#   BENCH_HELD_TOTAL   Pings held at once, half of each kind (50000)
#   BENCH_HELD_PER     Pings per device (10): TOTAL/2/PER devices of each kind
#   BENCH_HELD_WORKERS abqd's [eas] workers (6, see below)
#   BENCH_HELD_CONNS_PER_PROCESS  held connections per load-generator process (9000)
#   BENCH_ABQD         the abqd binary (default: the Release build in build-bench)
#   BENCH_HELD_MALLOC_STATS=1  after each round, glibc's malloc_stats() of each
#                      worker (gdb): bytes in use against bytes held from the system
#   BENCH_HELD_IDLE    seconds to wait after the phones went away before reading the
#                      memory once more (35; 0: not read)
#   BENCH_HELD_ROUNDS  rounds (1): each round connects the phones, measures, and lets
#                      them go; later rounds reuse the same abqd (is memory given back?)
#
# What it does:
# - The whole run is in a network namespace of its own (unshare -n; only its
#   loopback): its ports cannot clash with anything else on the machine, and its
#   ephemeral port range is widened there (10000-65000) without touching the
#   host's. abqd's TOTAL/2 upstream connections all go from 127.0.0.1 to one
#   port, so they need that many ephemeral ports on one 4-tuple family.
# - The upstream is bench/holder.py (answers OPTIONS and FolderSync, holds every
#   Ping), one process per 10,000 held Pings, all on one port with SO_REUSEPORT:
#   abqd has one upstream URL, and each process stays under RLIMIT_NOFILE.
# - abqd: [eas] workers = W (one SO_REUSEPORT socket each, so the kernel spreads
#   the phones evenly), mode Interactive, SQLite store, [log] level warn. A
#   proxied held Ping costs a worker 2 descriptors and a mailbox one 1, so at
#   50,000 the workers need 75,000 descriptors in all; this machine's hard
#   RLIMIT_NOFILE is 20,000 per process, so W = 6 (12,500 each, room for the
#   uneven spread) rather than one per core; idle workers cost only memory.
# - Phones (bench/mailbox_clients.py): the proxied devices BENCHP... get an
#   Allowed entry (abqctl import) before they first connect, then one
#   FolderSync 0 each; the mailbox devices BENCHQ... are Quarantined (mode
#   Interactive) and prepared as a phone does (FolderSync 0, Sync 0, Sync
#   GetChanges). Then the Pings (HeartbeatInterval 1800) from several processes,
#   each at most CONNS_PER_PROCESS connections and its own 20 source addresses
#   in 127.0.0.0/8.
# - Measured while all are held: held Pings by kind (abqd's
#   abqd_held_requests gauge, the holders' own count, the phones' count),
#   abqd's memory summed over its processes (main + workers; VmRSS, which counts
#   the pages the forked workers share once per process, and PSS, which does
#   not), per held Ping, the CPU of those processes over 10 s, the descriptors
#   of the busiest worker. Then `abqctl mobile abq allow` of one mailbox device
#   (its Pings end: Status 7) and `block` of one proxied device (its Pings end:
#   Status 129), each timed from just before abqctl starts until every one of
#   that device's Pings is answered (min/median/max), while all others stay held;
#   the same answers timed from abqctl's return bound the time from the commit
#   (which lies between the two) from below.
# - Then every phone goes away, and the connections abqd still has are counted.
#
# Nothing is pinned: W workers, the holders and the phones share both cores
# (the held state is idle, and the CPU is measured only once all are held).
# Results go to stdout and are appended to bench/out/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath -m "${BENCH_BUILD:-build-bench}") # relative to the tree, or absolute
TOTAL=${BENCH_HELD_TOTAL:-50000}
PER=${BENCH_HELD_PER:-10}
W=${BENCH_HELD_WORKERS:-6}
PERPROC=${BENCH_HELD_CONNS_PER_PROCESS:-9000}
ROUNDS=${BENCH_HELD_ROUNDS:-1}
IDLE=${BENCH_HELD_IDLE:-35}
HOLDER_MAX=10000
ABQ=18800 ADM=18801 HOLD=18802
. bench/lib.sh

if [ -z "${BENCH_HELD_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "held.sh: needs root (a network namespace of its own)" >&2; exit 1; }
	need ss iproute2
	need curl curl
	need unshare util-linux
	HALF=$((TOTAL / 2))
	[ $((HALF % PER)) = 0 ] && [ "$HALF" -ge "$PER" ] ||
		{ echo "held.sh: BENCH_HELD_TOTAL/2 must be a multiple of BENCH_HELD_PER" >&2; exit 1; }
	build_release abqd abqctl
	BENCH_HELD_NETNS=1 exec unshare -n -- "$0" "$@"
fi

ABQD=${BENCH_ABQD:-$B/src/daemon/abqd}
ABQCTL=$B/src/ctl/abqctl
HALF=$((TOTAL / 2))
NDEV=$((HALF / PER))
ip link set lo up
sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
sysctl -qw net.core.somaxconn=8192

bench_init held
hpids=()
ctl() { "$ABQCTL" -c "$tmp/abqd.conf" "$@"; }
# abqd's processes: the main one and its workers.
abqd_pids() { echo "$apid $(pgrep -P "$apid" | tr '\n' ' ')"; }
sum_rss() { # KiB of VmRSS over abqd's processes
	local s=0 p
	for p in $(abqd_pids); do s=$((s + $(rss_kib "$p"))); done
	echo "$s"
}
sum_pss() {
	local s=0 p
	for p in $(abqd_pids); do s=$((s + $(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup"))); done
	echo "$s"
}
sum_cpu_ticks() {
	local s=0 p
	for p in $(abqd_pids); do s=$((s + $(cpu_ticks "$p"))); done
	echo "$s"
}
max_fds() {
	local m=0 p n
	for p in $(pgrep -P "$apid"); do
		n=$(ls "/proc/$p/fd" | wc -l)
		[ "$n" -gt "$m" ] && m=$n
	done
	echo "$m"
}
held_gauge() { # KIND -> abqd_held_requests{kind="KIND"}
	curl -s "http://127.0.0.1:$ADM/metrics" | awk -v k="abqd_held_requests{kind=\"$1\"}" '$1 == k { print $2 }'
}
mib() { awk "BEGIN { printf \"%.1f\", $1 / 1024 }"; }

say "== held benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg); $TOTAL held ($HALF proxied over $NDEV devices, $HALF in the mailbox over $NDEV devices, $PER per device); abqd workers $W; hard RLIMIT_NOFILE $(ulimit -Hn)"

# The upstream: holders sharing one port.
NHOLD=$(((HALF + HOLDER_MAX - 1) / HOLDER_MAX))
for h in $(seq "$NHOLD"); do
	python3 bench/holder.py "$HOLD" --reuse-port >"$tmp/holder.$h.log" 2>&1 &
	pids+=($!)
	hpids+=($!)
done
wait_port "$HOLD"

cat >"$tmp/abqd.conf" <<EOF
[eas]
listen = 127.0.0.1:$ABQ
workers = $W
default_domain = example.com
max_connections_per_address = 1000000
[upstream]
url = http://127.0.0.1:$HOLD/Microsoft-Server-ActiveSync
[auth]
method = upstream
[store]
url = sqlite:abqd.db
[admin]
listen = 127.0.0.1:$ADM
metrics_public = yes
[log]
level = warn
EOF
ctl init >/dev/null
ctl config global set attribute abqMode value Interactive >/dev/null
for d in $(seq 0 $((NDEV - 1))); do printf 'BENCHP%03d\n' "$d"; done | ctl mobile abq import - Allowed >/dev/null
abqd_spawn "$tmp"
apid=${pids[-1]}
wait_port "$ABQ"
sleep 1
grep -q abqd "/proc/$apid/comm" || { echo "abqd pid not found"; exit 1; }
say "abqd processes $(abqd_pids | wc -w) (main + $W workers), RLIMIT_NOFILE $(awk '/Max open files/ { print $4 }' "/proc/$apid/limits") each; holders $NHOLD"

t0=$(date +%s.%N)
python3 bench/mailbox_clients.py --port "$ABQ" prep --proxied --prefix BENCHP --devices "$NDEV" --inbox 1 | tee -a "$out"
python3 bench/mailbox_clients.py --port "$ABQ" prep --prefix BENCHQ --devices "$NDEV" | tee -a "$out"
say "prepared $((2 * NDEV)) devices in $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }") s"
sleep 2
rss0=$(sum_rss) pss0=$(sum_pss)

# change VERB DEVICE NAME: abqctl, then wait for all $PER answers of DEVICE.
change() {
	local ts te
	ts=$(date +%s.%N)
	ctl mobile abq "$1" "$2" >/dev/null
	te=$(date +%s.%N)
	for _ in $(seq 200); do
		[ "$(cat "${logs[@]}" | grep -c "^answer $2 " || true)" -ge "$PER" ] && break
		sleep 0.05
	done
	cat "${logs[@]}" | grep "^answer $2 " |
		awk -v ts="$ts" '{ printf "%.1f %s/%s\n", ($5 - ts) * 1000, $3, $4 }' | sort -n >"$tmp/t.$3"
	local n st
	n=$(wc -l <"$tmp/t.$3")
	st=$(awk '{ print $2 }' "$tmp/t.$3" | sort | uniq -c | awk '{ printf "%s%s x%d", (NR > 1 ? ", " : ""), $2, $1 }')
	say "$3: abqctl $1 $2 took $(awk "BEGIN { printf \"%.0f\", ($te - $ts) * 1000 }") ms; $n of $PER Pings answered (HTTP/Ping status: $st)"
	awk -v p="held_$3" '{ v[NR] = $1 } END {
		printf "%s_change_to_answer_ms min %s median %s max %s\n", p, v[1], v[int((NR + 1) / 2)], v[NR] }' \
		"$tmp/t.$3" | tee -a "$out"
	# The commit lies between abqctl's start and its return: the same answers
	# timed from its return bound the commit-to-answer time from below
	# (negative: answered before abqctl had exited).
	awk -v p="held_$3" -v d="$(awk "BEGIN { printf \"%.1f\", ($te - $ts) * 1000 }")" \
		'{ v[NR] = $1 - d } END {
		printf "%s_abqctl_return_to_answer_ms min %.1f median %.1f max %.1f\n", p, v[1], v[int((NR + 1) / 2)], v[NR] }' \
		"$tmp/t.$3" | tee -a "$out"
}
for R in $(seq "$ROUNDS"); do
	if [ "$R" -gt 1 ]; then
		# Round R with the same abqd: the two changed devices back as they were, so
		# that the memory after the phones go away shows what stays.
		ctl mobile abq quarantine BENCHQ000 >/dev/null
		ctl mobile abq allow BENCHP000 >/dev/null
		sleep 2
		say "-- round $R (same abqd)"
	fi
	# The phones: each process its own slice and 20 source addresses.
	t0=$(date +%s.%N)
	base=2 clients=() logs=()
	for kind in P Q; do
		nproc_k=$(((HALF + PERPROC - 1) / PERPROC))
		slice=$(((HALF + nproc_k - 1) / nproc_k))
		for j in $(seq 0 $((nproc_k - 1))); do
			log=$tmp/clients.$kind.$j.log
			if [ $kind = P ]; then extra=(--inbox 1); else extra=(); fi
			python3 bench/mailbox_clients.py --port "$ABQ" hold --prefix "BENCH$kind" --devices "$NDEV" \
				--per "$PER" --offset $((j * slice)) --count "$slice" --addr-base "$base" --addrs 20 \
				--heartbeat 1800 --settle 2 "${extra[@]}" >"$log" 2>&1 &
			pids+=($!)
			clients+=($!)
			logs+=("$log")
			base=$((base + 20))
			[ "$base" -le 234 ] || { echo "held.sh: too many client processes for 127.0.0.2-254" >&2; exit 1; }
		done
	done
	for log in "${logs[@]}"; do
		for _ in $(seq 1500); do grep -q '^clients opened' "$log" && break; sleep 0.2; done
	done
	say "phones connected in $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }") s by ${#clients[@]} processes"
	for kind in P Q; do
		cat "$tmp"/clients.$kind.*.log | awk -v k="$kind" '/^clients opened/ {
			for (i = 2; i <= 5; i++) { split($i, f, "="); s[f[1]] += f[2] } }
			END { printf "phones %s: opened %d failed %d answered early %d holding %d\n",
				(k == "P" ? "proxied" : "mailbox"), s["opened"], s["failed"], s["answered"], s["holding"] }' | tee -a "$out"
		grep -h '^early' "$tmp"/clients.$kind.*.log | head -3 || true
	done
	# The phones have sent every Ping; abqd may still be working through them (a
	# mailbox Ping is one store transaction). Wait until its gauge counts them all
	# (or stops moving for 10 s).
	last=-1 still=0
	for _ in $(seq 1200); do
		g=$(($(held_gauge proxied) + $(held_gauge mailbox)))
		[ "$g" -ge "$TOTAL" ] && break
		if [ "$g" = "$last" ]; then still=$((still + 1)); else still=0 last=$g; fi
		[ "$still" -ge 20 ] && break
		sleep 0.5
	done
	say "all held after $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }") s (abqd's gauge: $g)"
	sleep 3
	for p in "${hpids[@]}"; do kill -USR1 "$p"; done
	sleep 0.5
	up_held=$(for f in "$tmp"/holder.*.log; do grep '^holder holding' "$f" | tail -1; done |
		awk '{ s += $3 } END { print s + 0 }')
	g_prox=$(held_gauge proxied) g_mbx=$(held_gauge mailbox)
	front=$(estab "sport = :$ABQ")
	rss1=$(sum_rss) pss1=$(sum_pss)
	fds=$(max_fds)
	c0=$(sum_cpu_ticks)
	sleep 10
	c1=$(sum_cpu_ticks)
	hz=$(getconf CLK_TCK)
	held=$((g_prox + g_mbx))
	say "held_requested $TOTAL"
	say "held_proxied $g_prox (abqd's gauge; the holders hold $up_held)"
	say "held_mailbox $g_mbx (abqd's gauge)"
	say "held_total $held"
	say "held_phone_connections $front"
	say "held_busiest_worker_fds $fds"
	say "held_rss_before_kib $rss0 ($(mib "$rss0") MiB, $(abqd_pids | wc -w) processes)"
	say "held_rss_kib $rss1 ($(mib "$rss1") MiB)"
	say "held_pss_kib $pss1 ($(mib "$pss1") MiB; before $(mib "$pss0") MiB)"
	say "held_rss_kib_per_held $(awk "BEGIN { printf \"%.2f\", ($rss1 - $rss0) / ($held > 0 ? $held : 1) }")"
	say "held_rss_total_kib_per_held $(awk "BEGIN { printf \"%.2f\", $rss1 / ($held > 0 ? $held : 1) }")"
	say "held_cpu_percent_10s $(awk "BEGIN { printf \"%.2f\", ($c1 - $c0) * 100 / $hz / 10 }") (abqd's processes together; 100 = one core)"

	change allow BENCHQ000 allow_mailbox
	change block BENCHP000 block_proxied
	sleep 1
	say "held_after_changes total $(($(held_gauge proxied) + $(held_gauge mailbox))) (expected $((held - 2 * PER))); answers to other devices $(cat "${logs[@]}" | grep '^answer' | grep -vc -e '^answer BENCHQ000 ' -e '^answer BENCHP000 ' || true)"

	for p in "${clients[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${clients[@]}"; do wait "$p" 2>/dev/null || true; done
	sleep 3
	say "after_close phone_connections $(estab "sport = :$ABQ") upstream_connections $(estab "dport = :$HOLD") held $(($(held_gauge proxied) + $(held_gauge mailbox))) busiest_worker_fds $(max_fds) rss_kib $(sum_rss)"
	# abqd gives freed heap pages back within 30 s once the load fell (gateway.c on_trim).
	if [ "$IDLE" -gt 0 ]; then
		sleep "$IDLE"
		rss=$(sum_rss)
		say "after_idle_${IDLE}s rss_kib $rss ($(mib "$rss") MiB)"
	fi
	if [ -n "${BENCH_HELD_MALLOC_STATS:-}" ]; then
		# glibc's own count of the bytes in use against what it holds from the
		# system: tells memory kept for reuse from memory still allocated.
		for p in $(pgrep -P "$apid"); do
			gdb -q -batch -p "$p" -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || true
		done
		sleep 0.5
		awk '/^Total \(incl. mmap\):/ { t = 1; next } t && /system bytes/ { sys += $4 }
			t && /in use bytes/ { use += $5; t = 0 }
			END { printf "after_close malloc (workers, glibc malloc_stats): system %.1f MiB, in use %.1f MiB\n",
				sys / 1048576, use / 1048576 }' "$tmp/stderr" | tee -a "$out"
		: >"$tmp/stderr"
	fi
done
# abqd drains and exits; its stderr is kept (an ASan build given as BENCH_ABQD
# reports leaks there).
kill "$apid"
wait "$apid" 2>/dev/null || true
cp "$tmp/stderr" bench/out/held-abqd-stderr.txt
stderr_summary "$tmp/stderr"
