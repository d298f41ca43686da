# Shell helpers of the bench/*.sh scripts (sourced,
# not run; the caller has done `cd` to the top of the tree).

# need COMMAND PACKAGE: apt-get install PACKAGE unless COMMAND is there.
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }

# build_release TARGET...: the Release build in $B.
build_release() {
	cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	ninja -C "$B" -j2 "$@" >/dev/null
}

# build_native: the RelWithDebInfo build of abqd and abqctl in $B for the native
# benchmarks (not build_release: the Release build stops on a
# -Wformat-truncation that only -O3 reports, src/mime/msgconv.c); sets ABQD
# and ABQCTL.
build_native() {
	cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	ninja -C "$B" -j2 abqd abqctl >/dev/null
	ABQD=$B/src/daemon/abqd
	ABQCTL=$B/src/ctl/abqctl
}

# fixture_native_up: the SOGo fixture (tests/fixture/upstream.sh) in
# $tmp/fixture on the ports from $BASE+10 to $BASE+16, its daemons on CPU $SUT;
# sets fixture_up (for cleanup_more: fixture_native_down) and SOGO_URL.
# Extra ABQ_FIX_* settings come from the caller's environment.
fixture_native_up() {
	chmod 755 "$tmp" # the fixture's daemons run as their own users
	export ABQ_FIX_SOGO_PORT=$((BASE + 10)) ABQ_FIX_PG_PORT=$((BASE + 11))
	export ABQ_FIX_IMAP_PORT=$((BASE + 12)) ABQ_FIX_MEMCACHED_PORT=$((BASE + 13))
	export ABQ_FIX_SMTP_PORT=$((BASE + 14)) ABQ_FIX_SUBMISSION_PORT=$((BASE + 15))
	export ABQ_FIX_RELAY_PORT=$((BASE + 16))
	fixture_up=1
	taskset -c "$SUT" tests/fixture/upstream.sh up --dir "$tmp/fixture" >"$tmp/fixture.out" 2>&1 ||
		{ cat "$tmp/fixture.out"; exit 1; }
	SOGO_URL=$(grep '^http://' "$tmp/fixture.out" | tail -1)
}
fixture_native_down() {
	[ -z "${fixture_up:-}" ] || tests/fixture/upstream.sh down --dir "$tmp/fixture" >/dev/null 2>&1 || true
}

# bench_init NAME: results to $out (bench/out/results.txt), the run's files in
# $tmp (/tmp/abqd-NAME-bench.*); the processes started put their pids in $pids,
# and on exit they are ended, cleanup_more runs (if the caller defines it) and
# $tmp goes.
bench_init() {
	mkdir -p bench/out
	out=bench/out/results.txt
	tmp=$(mktemp -d "/tmp/abqd-$1-bench.XXXXXX")
	pids=()
	trap cleanup EXIT
}
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if declare -F cleanup_more >/dev/null; then cleanup_more; fi
	rm -rf "$tmp"
}

say() { echo "$*" | tee -a "$out"; }
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# abqd_spawn DIR [COMMAND...]: $ABQD -d -c abqd.conf in DIR in the background,
# run by COMMAND (taskset ...) if given, stderr to DIR/stderr, with as many
# descriptors as allowed; its pid is appended to pids (COMMAND execs abqd, so it
# is abqd's own).
abqd_spawn() {
	local d=$1
	shift
	(ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	 cd "$d" && exec "$@" "$ABQD" -d -c abqd.conf 2>"$d/stderr") &
	pids+=($!)
}
# stderr_summary FILE: abqd's most frequent stderr lines, if it wrote any.
stderr_summary() {
	if grep -q . "$1"; then
		echo "abqd's stderr (level warn), most frequent lines:"
		sed 's/^[^a-z]*//' "$1" | cut -c1-160 | sed 's/dev=[^ ]*/dev=X/' |
			sort | uniq -c | sort -rn | head -5
	fi
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
estab() { ss -Htn state established "( $1 )" | wc -l; }
