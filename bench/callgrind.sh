#!/bin/bash
# Instructions per proxied request (not a test): the measure of abqd's
# per-request cost that a shared machine does not move.
#
#   bench/callgrind.sh                # the tree's own build-callgrind
#   BENCH_BUILD=DIR bench/callgrind.sh
#   BENCH_DURATION=10 BENCH_CONNS=10 (the defaults)
#
# The setting of bench/proxy.sh's first part at one worker: the fast upstream
# (nginx, `return 200`), abqd in front of it (upstream auth cached, Permissive,
# [log] level warn), wrk sending bench/proxy.lua's FolderSync POST. abqd (a
# Release build with -g; ABQ_BENCH_KEEP_BLOCKS keeps its block caches under
# valgrind, as in production) runs under callgrind with instrumentation off;
# it is switched on after a warm-up (the first request's auth probe, the
# caches) and off after BENCH_DURATION seconds of load, so the counts are
# those of steady traffic only. Prints instructions per request (all of
# abqd's Ir in the window over the calls of eas_request_parse, one per
# request) and the functions by inclusive cost per request; the raw file
# stays in bench/out/callgrind.out.abqd. Ports BENCH_PORT_BASE..
# (18640..18642). Kernel time (about half of abqd's CPU) is not counted.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath -m "${BENCH_BUILD:-build-callgrind}") # relative to the tree, or absolute
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-10}
BASE=${BENCH_PORT_BASE:-18640}
UP=$BASE ABQ=$((BASE + 1)) ADM=$((BASE + 2))

. bench/lib.sh
need() { command -v "$1" >/dev/null || { echo "$0: $1 is missing" >&2; exit 1; }; }
need wrk
need nginx
need valgrind
need callgrind_annotate

cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS=-g -DABQ_BENCH_KEEP_BLOCKS" >/dev/null
ninja -C "$B" -j2 abqd >/dev/null
ABQD=$B/src/daemon/abqd

bench_init callgrind
chmod 755 "$tmp"
mkdir -p "$tmp/upstream/logs" "$tmp/abqd"
cat >"$tmp/upstream/nginx.conf" <<EOF
pid $tmp/upstream/nginx.pid; worker_processes 1; events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp/upstream/body;
	server {
		listen 127.0.0.1:$UP;
		keepalive_requests 100000000;
		location / {
			default_type application/vnd.ms-sync.wbxml;
			add_header MS-Server-ActiveSync 14.1;
			return 200 "FOLDERSYNC-RESPONSE-0123456789abcdef0123456789abcdef";
		}
	}
}
EOF
nginx -p "$tmp/upstream/" -c "$tmp/upstream/nginx.conf" -e "$tmp/upstream/logs/error.log" \
	-g 'daemon off;' &
pids+=($!)
cat >"$tmp/abqd/abqd.conf" <<EOF
[eas]
listen = 127.0.0.1:$ABQ
workers = 1
default_domain = example.com
max_connections_per_address = 100000
[upstream]
url = http://127.0.0.1:$UP/Microsoft-Server-ActiveSync
[auth]
method = upstream
[store]
url = sqlite:abqd.db
[admin]
listen = 127.0.0.1:$ADM
[log]
level = warn
EOF
wait_port "$UP"
(cd "$tmp/abqd" && exec valgrind --tool=callgrind --instr-atstart=no \
	--callgrind-out-file="$tmp/callgrind.out" "$ABQD" -d -c abqd.conf 2>"$tmp/abqd/stderr") &
vpid=$!
pids+=($vpid)
for _ in $(seq 300); do
	(exec 3<>"/dev/tcp/127.0.0.1/$ABQ") 2>/dev/null && break
	sleep 0.2
done
wrk -t1 -c"$CONNS" -d3s -s bench/proxy.lua "http://127.0.0.1:$ABQ" >/dev/null # warm-up
callgrind_control -i on "$vpid" >/dev/null
wrk -t1 -c"$CONNS" -d"$DUR"s -s bench/proxy.lua "http://127.0.0.1:$ABQ" >"$tmp/wrk.out"
callgrind_control -i off "$vpid" >/dev/null
kill "$vpid"
wait "$vpid" 2>/dev/null || true
mkdir -p bench/out
cp "$tmp/callgrind.out" bench/out/callgrind.out.abqd
callgrind_annotate --inclusive=yes --tree=none bench/out/callgrind.out.abqd >"$tmp/incl"
# The requests in the window: the calls of eas_request_parse.
# (Names are compressed: "cfn=(12) name" the first time, "cfn=(12)" after.)
reqs=$(awk '/^c?fn=\(/ { id = $1; sub(/^c?fn=/, "", id); if (NF > 1) name[id] = $2 }
	/^cfn=/ { f = (name[id] == "eas_request_parse") }
	f && /^calls=/ { split($1, a, "="); n += a[2] } END { print n }' bench/out/callgrind.out.abqd)
total=$(awk '/^totals:/ { print $2; exit }' bench/out/callgrind.out.abqd)
echo "requests $reqs (wrk: $(sed -n 's/^RESULT //p' "$tmp/wrk.out"))"
echo "instructions_per_request $(awk -v t="$total" -v n="$reqs" 'BEGIN { printf "%.0f", t / n }')"
echo "by inclusive cost per request (functions of abqd and its libraries):"
# "N (P%)  file:function [object]": the function, once per name.
awk -v n="$reqs" '/^ *[0-9,]+ \( *[0-9.]+%\)/ {
	c = $1; gsub(/,/, "", c); sub(/^[^)]*\) +/, ""); sub(/ \[.*/, ""); sub(/^.*:/, "")
	if (!seen[$0]++) printf "%10.0f %s\n", c / n, $0 }' "$tmp/incl" | head -${BENCH_TOP:-50}
