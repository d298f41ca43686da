#!/bin/bash
# The proxy benchmark (not a test): abqd against nginx as a plain reverse proxy.
#
#   bench/proxy.sh            # both parts
#   BENCH_ONLY=rps|held bench/proxy.sh; BENCH_HELD="4000 10000" (the default)
#   BENCH_WORKERS="1 2" (the default): the worker counts of part 1
#
# 1. Requests per second and latency, once per worker count W. One fast
#    upstream (nginx, W workers, `return 200` with a small fixed body,
#    access_log off) and, in front of it on loopback, plain HTTP: nginx as a
#    reverse proxy (worker_processes W, access_log off, HTTP/1.1 keep-alive pool
#    to the upstream) and abqd ([eas] workers = W; [log] level warn, so no
#    request line is logged; auth by upstream probe, cached; Permissive, so the
#    device is Allowed and proxied). With W > 1 a second abqd runs with
#    ABQD_SHARED_LISTENER=1 (one listening socket shared by the workers instead
#    of one SO_REUSEPORT socket each), to compare the two. wrk (W threads) sends
#    the same FolderSync POST (bench/proxy.lua) to each, and to the upstream
#    directly; added latency = proxy - direct. Rounds are interleaved (direct,
#    nginx, abqd, direct, ...) and the median round is reported; then one round
#    at 1 connection (latency without queueing). Each round also reads the CPU
#    time (user + system) of all of each server's processes per request
#    answered, and each abqd round is set against the nginx round before it
#    (w*_proxy_rps_ratio_rounds and their median): on a shared VM both are
#    steadier than two independent medians.
# 2. Held long polls. abqd in front of bench/holder.py (answers OPTIONS, holds
#    every Ping); bench/hold_clients.py opens N Ping requests (each N of BENCH_HELD) from
#    127.0.0.2..41 over 50 DeviceIds. abqd's VmRSS before and after, held
#    connections counted with ss, CPU over 10 s idle-held, and whether abqd drops
#    the upstream connections once the phones go away.
#
# Pinning (2 cores): with W = 1 (and in part 2) the server under test on CPU
# BENCH_PIN_SUT (0); wrk, the upstream nginx, the holder and the clients on
# BENCH_PIN_LOAD (1). With W > 1 nothing is pinned: W workers need W cores, so
# the proxy, wrk and the upstream share all of them (the ratio compares abqd
# and nginx under the same sharing). Everything runs in its own temporary folder on ports
# BENCH_PORT_BASE.. (18600..18608); the system nginx and its config are not used.
# Results go to stdout and are appended to bench/out/results.txt. BENCH_PERF=1
# also profiles abqd under wrk (perf, DWARF call graphs) into bench/out/perf-abqd-*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath -m "${BENCH_BUILD:-build-bench}") # relative to the tree, or absolute
ONLY=${BENCH_ONLY:-all}
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-50}
ROUNDS=${BENCH_ROUNDS:-3}
HELD_LIST=${BENCH_HELD:-4000 10000}
BASE=${BENCH_PORT_BASE:-18600}
WORKERS_LIST=${BENCH_WORKERS:-1 2}
SUT=${BENCH_PIN_SUT:-0}
LOAD=${BENCH_PIN_LOAD:-1}
UP=$BASE NGX=$((BASE + 1)) ABQ=$((BASE + 2)) ADM=$((BASE + 3))
HOLD=$((BASE + 4)) ABQH=$((BASE + 5)) ADMH=$((BASE + 6)) ABQS=$((BASE + 7)) ADMS=$((BASE + 8))

. bench/lib.sh
need wrk wrk
need curl curl
need ss iproute2
command -v nginx >/dev/null || { apt-get update -qq && { apt-get install -y -qq nginx-light >/dev/null 2>&1 || apt-get install -y -qq nginx >/dev/null; }; }
NGINX=$(command -v nginx)

build_release abqd
ABQD=$B/src/daemon/abqd

bench_init proxy
chmod 755 "$tmp" # nginx's workers run as nobody
# nginx NAME CPU: start nginx with $tmp/NAME/nginx.conf, in the foreground, pinned.
nginx_start() {
	mkdir -p "$tmp/$1/logs"
	taskset -c "$2" "$NGINX" -p "$tmp/$1/" -c "$tmp/$1/nginx.conf" -e "$tmp/$1/logs/error.log" \
		-g 'daemon off;' &
	pids+=($!)
}
NGINX_COMMON="pid $tmp/\$NAME/nginx.pid; worker_processes \$W; events { worker_connections 8192; }"
nginx_conf() { # NAME HTTP-BLOCK [WORKERS]
	mkdir -p "$tmp/$1"
	local c=${NGINX_COMMON//\$NAME/$1}
	printf '%s\nhttp {\n\taccess_log off;\n\tclient_body_temp_path %s/%s/body;\n\tproxy_temp_path %s/%s/proxy;\n%s\n}\n' \
		"${c//\$W/${3:-1}}" "$tmp" "$1" "$tmp" "$1" "$2" >"$tmp/$1/nginx.conf"
}
abqd_start() { # NAME PORT ADMIN UPSTREAM-PORT [WORKERS [CPUS]]
	mkdir -p "$tmp/$1"
	cat >"$tmp/$1/abqd.conf" <<-EOF
		[eas]
		listen = 127.0.0.1:$2
		workers = ${5:-1}
		default_domain = example.com
		max_connections_per_address = 100000
		[upstream]
		url = http://127.0.0.1:$4/Microsoft-Server-ActiveSync
		[auth]
		method = upstream
		[store]
		url = sqlite:abqd.db
		[admin]
		listen = 127.0.0.1:$3
		[log]
		level = warn
	EOF
	abqd_spawn "$tmp/$1" taskset -c "${6:-$SUT}"
	wait_port "$2"
}

say "== proxy benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cpus; SUT on cpu $SUT, load on cpu $LOAD; $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"

for W in $([ "$ONLY" != held ] && echo $WORKERS_LIST); do
	if [ "$W" = 1 ]; then
		SUTC=$SUT LOADC=$LOAD
	else
		SUTC="0-$(($(nproc) - 1))" LOADC=$SUTC
	fi
	say "-- $W worker(s): proxies on cpu $SUTC, wrk (-t$W) and upstream on cpu $LOADC"
	run_pids=()
	# The fast upstream: a fixed answer to anything (POST, and OPTIONS for the auth probe).
	nginx_conf upstream "	server {
		listen 127.0.0.1:$UP backlog=4096;
		keepalive_requests 100000000;
		location / {
			default_type application/vnd.ms-sync.wbxml;
			add_header MS-Server-ActiveSync 14.1;
			return 200 \"FOLDERSYNC-RESPONSE-0123456789abcdef0123456789abcdef\";
		}
	}" "$W"
	# The plain reverse proxy.
	nginx_conf nginx "	upstream fast {
		server 127.0.0.1:$UP;
		keepalive 64;
		keepalive_requests 100000000;
	}
	server {
		listen 127.0.0.1:$NGX backlog=4096;
		keepalive_requests 100000000;
		location / {
			proxy_pass http://fast;
			proxy_http_version 1.1;
			proxy_set_header Connection \"\";
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
		}
	}" "$W"
	nginx_start upstream "$LOADC"
	run_pids+=(${pids[-1]})
	nginx_start nginx "$SUTC"
	run_pids+=(${pids[-1]})
	wait_port "$UP"
	wait_port "$NGX"
	rm -rf "$tmp/abqd" "$tmp/abqds"
	abqd_start abqd "$ABQ" "$ADM" "$UP" "$W" "$SUTC"
	run_pids+=(${pids[-1]})
	targets="direct:$UP nginx:$NGX abqd:$ABQ"
	if [ "$W" -gt 1 ]; then
		ABQD_SHARED_LISTENER=1 abqd_start abqds "$ABQS" "$ADMS" "$UP" "$W" "$SUTC"
		run_pids+=(${pids[-1]})
		targets="$targets abqd_shared:$ABQS"
	fi

	q='/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=BENCH1&DeviceType=iPhone'
	for t in $targets; do
		n=${t%%:*} port=${t##*:}
		code=$(printf '\x03\x01\x6a\x00\x00\x07\x56\x52\x03\x30\x00\x01\x01' |
			curl -s -o "$tmp/probe.$n" -w '%{http_code}' -u alice:secret \
				-H 'MS-ASProtocolVersion: 14.1' -H 'Content-Type: application/vnd.ms-sync.wbxml' \
				--data-binary @- "http://127.0.0.1:$port$q")
		echo "probe $n: HTTP $code, $(wc -c <"$tmp/probe.$n") bytes"
		[ "$code" = 200 ] || { echo "probe $n failed"; cat "$tmp/abqd/stderr"; exit 1; }
	done

	# wrk_run PORT CONNS SECONDS -> "rps p50_us p99_us errors requests"
	wrk_run() {
		local t=$W
		[ "$2" -lt "$t" ] && t=$2
		taskset -c "$LOADC" wrk -t"$t" -c"$2" -d"$3"s --latency -s bench/proxy.lua \
			"http://127.0.0.1:$1" >"$tmp/wrk.out"
		awk '/^RESULT/ { split($0, f, /[ =]/); print f[3], f[5], f[7], f[11], f[9] }' "$tmp/wrk.out"
	}
	# The processes of each server under test, for their CPU time: every
	# process listening on its port, and its parent when that is the same
	# program (nginx's master, abqd's main process): all of the server's work.
	server_pids() {
		local p pp
		for p in $(ss -Htlnp "( sport = :$1 )" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
			echo "$p"
			pp=$(awk '{ print $4 }' "/proc/$p/stat")
			[ "$(cat "/proc/$pp/comm")" = "$(cat "/proc/$p/comm")" ] && echo "$pp"
		done | sort -u | paste -sd' '
	}
	# cpu_of PIDS -> their user+system clock ticks so far
	cpu_of() {
		local p n=0
		for p in $1; do n=$((n + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done
		echo "$n"
	}
	hz=$(getconf CLK_TCK)
	for t in $targets; do
		wrk_run "${t##*:}" "$CONNS" 2 >/dev/null # warm-up
	done
	rm -f "$tmp"/r.* "$tmp"/c.*
	for t in $targets; do
		eval "spids_${t%%:*}=\"$(server_pids "${t##*:}")\""
	done
	for r in $(seq "$ROUNDS"); do
		for t in $targets; do
			n=${t%%:*}
			eval "sp=\$spids_$n"
			c0=$(cpu_of "$sp")
			read -r rps p50 p99 err reqs < <(wrk_run "${t##*:}" "$CONNS" "$DUR")
			c1=$(cpu_of "$sp")
			# CPU per request: what the server spent (user + system, all its
			# processes) per answered request, in microseconds.
			cpu=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.2f", (n > 0 ? c * 1e6 / hz / n : 0) }')
			echo "$rps $p50 $p99" >>"$tmp/r.$n"
			echo "$cpu" >>"$tmp/c.$n"
			say "w$W round $r $n: ${rps} req/s p50 ${p50} us p99 ${p99} us errors ${err} cpu ${cpu} us/request (-t$W -c$CONNS -d${DUR}s)"
		done
	done
	for t in $targets; do
		n=${t%%:*}
		# The median round by req/s, with that round's latencies.
		read -r rps p50 p99 < <(sort -n "$tmp/r.$n" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)')
		eval "rps_$n=$rps p50_$n=$p50 p99_$n=$p99"
	done
	for t in $targets; do
		n=${t%%:*}
		read -r rps p50 p99 err < <(wrk_run "${t##*:}" 1 5)
		eval "c1_p50_$n=$p50 c1_p99_$n=$p99"
		say "w$W 1 connection $n: ${rps} req/s p50 ${p50} us p99 ${p99} us errors ${err}"
	done
	for t in $targets; do
		n=${t%%:*}
		eval "say \"w${W}_proxy_rps_$n \$rps_$n\""
	done
	say "w${W}_proxy_rps_ratio_abqd_nginx $(awk "BEGIN { printf \"%.2f\", $rps_abqd / $rps_nginx }")"
	# Round by round (each abqd round against the nginx round just before it,
	# which cancels the machine's slow drifts), and the median of those.
	paste -d' ' "$tmp/r.abqd" "$tmp/r.nginx" | awk '{ printf "%.2f\n", $1 / $4 }' >"$tmp/pairs"
	say "w${W}_proxy_rps_ratio_rounds $(paste -sd' ' "$tmp/pairs")"
	say "w${W}_proxy_rps_ratio_paired_median $(sort -n "$tmp/pairs" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)')"
	# The median CPU per request of each, and nginx's over abqd's: above 1,
	# abqd does the same work with less CPU (what a busy machine runs out of).
	for t in $targets; do
		n=${t%%:*}
		eval "cpu_$n=$(sort -n "$tmp/c.$n" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)')"
		eval "say \"w${W}_proxy_cpu_us_per_request_$n \$cpu_$n\""
	done
	say "w${W}_proxy_cpu_ratio_nginx_abqd $(awk "BEGIN { printf \"%.2f\", $cpu_nginx / $cpu_abqd }")"
	[ "$W" -gt 1 ] && say "w${W}_proxy_rps_ratio_abqd_shared_nginx $(awk "BEGIN { printf \"%.2f\", $rps_abqd_shared / $rps_nginx }")"
	for t in $targets; do
		n=${t%%:*}
		eval "say \"w${W}_proxy_p50_us_$n \$p50_$n\"; say \"w${W}_proxy_p99_us_$n \$p99_$n\""
		[ "$n" = direct ] && continue
		eval "say \"w${W}_proxy_added_p50_us_$n \$((p50_$n - p50_direct))\""
		eval "say \"w${W}_proxy_added_p99_us_$n \$((p99_$n - p99_direct))\""
		eval "say \"w${W}_proxy_c1_added_p50_us_$n \$((c1_p50_$n - c1_p50_direct))\""
		eval "say \"w${W}_proxy_c1_added_p99_us_$n \$((c1_p99_$n - c1_p99_direct))\""
	done
	if [ -n "${BENCH_PERF:-}" ]; then
		# Where abqd's time goes under the same load: flat profile and call graph
		# (every abqd process listening on the port: the workers, and the main one idle).
		abqd_pids=$(ss -Htlnp "( sport = :$ABQ )" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u |
			paste -sd,)
		abqd_pid=${abqd_pids##*,}
		taskset -c "$LOADC" wrk -t"$W" -c"$CONNS" -d12s -s bench/proxy.lua "http://127.0.0.1:$ABQ" >/dev/null &
		wpid=$!
		sleep 1
		top -H -b -n2 -d1 -p "$abqd_pids" | awk '/^ *PID/ { n++ } n == 2'
		perf record -q -F 999 --call-graph dwarf,16384 -p "$abqd_pids" -o "$tmp/perf.data" -- sleep 8 2>/dev/null
		wait "$wpid"
		perf report -i "$tmp/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
			grep -v '^$' >"bench/out/perf-abqd-w$W-flat.txt"
		perf report -i "$tmp/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
			grep -v '^$' >"bench/out/perf-abqd-w$W-children.txt"
		echo "perf: bench/out/perf-abqd-w$W-flat.txt, bench/out/perf-abqd-w$W-children.txt"
		# System calls per proxied request, abqd (one worker) against an nginx worker.
		ngx_pid=$(pgrep -P "$(cat "$tmp/nginx/nginx.pid")" | head -1)
		for t in "abqd $ABQ $abqd_pid" "nginx $NGX $ngx_pid"; do
			set -- $t
			taskset -c "$LOADC" wrk -t"$W" -c"$CONNS" -d6s -s bench/proxy.lua "http://127.0.0.1:$2" >"$tmp/wrk.sc" &
			wpid=$!
			sleep 1
			perf trace -s -p "$3" -o "$tmp/trace.$1" -- sleep 4 >/dev/null 2>&1 || true
			wait "$wpid"
			calls=$(awk '$2 ~ /^[0-9]+$/ && NF > 5 { n += $2 } END { print n + 0 }' "$tmp/trace.$1")
			echo "syscalls $1 (one process, 4 s under wrk, traced): $calls; by call:"
			awk '$2 ~ /^[0-9]+$/ && NF > 5 { print "   ", $1, $2 }' "$tmp/trace.$1" | sort -k2 -rn | head -8
			sed -n 's/^RESULT/  wrk/p' "$tmp/wrk.sc"
		done
		grep '%' "bench/out/perf-abqd-w$W-flat.txt" | grep -v '^#' | sed -n 1,30p
	fi
	for n in abqd abqds; do
		if [ -s "$tmp/$n/stderr" ] && grep -qv ' info: ' "$tmp/$n/stderr"; then
			echo "$n's stderr (level warn):"
			grep -v ' info: ' "$tmp/$n/stderr" | sort | cut -c1-200 | uniq -c | sort -rn | head -5
		fi
	done
	for p in "${run_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${run_pids[@]}"; do wait "$p" 2>/dev/null || true; done
done

if [ "$ONLY" != rps ]; then
	taskset -c "$LOAD" python3 bench/holder.py "$HOLD" >"$tmp/holder.log" 2>&1 &
	pids+=($!)
	wait_port "$HOLD"
fi
for HELD in $([ "$ONLY" != rps ] && echo $HELD_LIST); do
	rm -rf "$tmp/abqh"
	abqd_start abqh "$ABQH" "$ADMH" "$HOLD"
	# The subshell execs taskset, which execs abqd: the last pid is abqd itself.
	apid=${pids[-1]}
	grep -q abqd "/proc/$apid/comm" || { echo "abqd pid not found"; exit 1; }
	say "abqd RLIMIT_NOFILE $(awk '/Max open files/ { print $4 }' "/proc/$apid/limits")"
	taskset -c "$LOAD" python3 bench/hold_clients.py --port "$ABQH" --warm | tee -a "$out"
	sleep 1
	rss0=$(rss_kib "$apid")
	taskset -c "$LOAD" python3 bench/hold_clients.py --port "$ABQH" --n "$HELD" >"$tmp/clients.log" 2>&1 &
	cpid=$!
	pids+=($cpid)
	for _ in $(seq 600); do grep -q '^clients opened' "$tmp/clients.log" && break; sleep 0.2; done
	say "$(grep '^clients' "$tmp/clients.log" || cat "$tmp/clients.log")"
	sleep 2
	up_held=$(estab "dport = :$HOLD")
	front=$(estab "sport = :$ABQH")
	rss1=$(rss_kib "$apid")
	fds=$(ls "/proc/$apid/fd" | wc -l)
	t0=$(cpu_ticks "$apid")
	sleep 10
	t1=$(cpu_ticks "$apid")
	hz=$(getconf CLK_TCK)
	say "n${HELD}_held_requested $HELD"
	say "n${HELD}_held_front_connections $front"
	say "n${HELD}_held_upstream_connections $up_held"
	say "n${HELD}_held_abqd_fds $fds"
	say "n${HELD}_held_rss_before_kib $rss0"
	say "n${HELD}_held_rss_after_kib $rss1"
	say "n${HELD}_held_kib_per_connection $(awk "BEGIN { printf \"%.1f\", ($rss1 - $rss0) / ($front > 0 ? $front : 1) }")"
	say "n${HELD}_held_kib_per_held_request $(awk "BEGIN { printf \"%.1f\", ($rss1 - $rss0) / ($up_held > 0 ? $up_held : 1) }")"
	say "n${HELD}_held_idle_cpu_percent_10s $(awk "BEGIN { printf \"%.2f\", ($t1 - $t0) * 100 / $hz / 10 }")"
	kill "$cpid"
	wait "$cpid" 2>/dev/null || true
	sleep 3
	say "n${HELD}_after_close_upstream_connections $(estab "dport = :$HOLD")"
	say "n${HELD}_after_close_front_connections $(estab "sport = :$ABQH")"
	say "n${HELD}_after_close_rss_kib $(rss_kib "$apid")"
	stderr_summary "$tmp/abqh/stderr"
	kill "$apid"
	wait "$apid" 2>/dev/null || true
	sleep 1
done
