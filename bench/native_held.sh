#!/bin/bash
# Held native Pings (not a test), issue 17: abqd as the ActiveSync server over
# IMAP, with many phones holding a Ping on their Inbox at once.
#
#   bench/native_held.sh                          # 10,000 Pings over 1,000 accounts
#   BENCH_NH_ACCOUNTS=100 BENCH_NH_PER=10 bench/native_held.sh   # a quick run
#   BENCH_NH_PROFILES="notify idle" (both, the default) | notify | idle
#
# Needs root (a network namespace of its own, and Dovecot run as root dropping
# to the mail user). Knobs:
#   BENCH_NH_ACCOUNTS  accounts (1000), bench0000 .. (Dovecot's static passdb:
#                      any name with the password "secret")
#   BENCH_NH_PER       devices per account, one held Ping each (10)
#   BENCH_NH_IDLE      seconds over which abqd's CPU is measured while all are
#                      held (30)
#   BENCH_LOG          abqd's log level (warn); when set, its log is kept in
#                      bench/out/native-held-abqd.log
#                      (Dovecot's log's last 2,000 lines: bench/out/native-held-dovecot.log)
#   BENCH_ABQD         the abqd binary (default: the RelWithDebInfo build in
#                      build-bench)
#
# What it does, once per profile:
# - Dovecot 2.3 on loopback (its own config in this run's folder): static
#   passdb/userdb (every account a Maildir of its own, made at first login),
#   mailbox_list_index (NOTIFY needs it), process and client limits raised
#   for thousands of IMAP sessions. Profile "notify": the server as installed
#   (NOTIFY offered: abqd's watcher holds one NOTIFY connection per account);
#   profile "idle": the same server answering on 127.0.0.2 with NOTIFY taken
#   out of its CAPABILITY (a `local` block), so abqd's watcher IDLEs on each
#   watched folder (here one: the Inbox).
# - abqd in native mode on it: one worker, Permissive (every device Allowed),
#   SQLite store, credentials checked by IMAP LOGIN (the default), log warn;
#   [auth] max_probes_per_address raised (every phone here comes from loopback,
#   where the default 4 would answer most first logins 503).
# - Phones (bench/mailbox_clients.py --accounts): ACCOUNTS*PER devices, device
#   d logging in as bench<d % ACCOUNTS>, each does what a phone does (FolderSync
#   0, Sync 0 on its Inbox, GetChanges to the end); then one Ping each on the
#   Inbox (HeartbeatInterval 1800) from one process, 20 source addresses, 250
#   every half second (phones coming back over some seconds, not in one burst).
# - Measured once abqd's held gauge counts them all: abqd's VmRSS before the
#   Pings and with all held (per held Ping; measured once the commands' idle
#   IMAP connections are logged out, 60 s after their last use), its CPU over BENCH_NH_IDLE seconds,
#   its descriptors, its IMAP connections (by kind, abqd's gauge, and by ss);
#   Dovecot's imap processes and the sum of their VmRSS and PSS. Then push at
#   scale: a message APPENDed to one account's INBOX, and the time from the
#   APPEND's answer to each of that account's PER Pings' answers, while the
#   others stay held.
#
# Nothing is pinned. Results go to stdout and are appended to
# bench/out/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath -m "${BENCH_BUILD:-build-bench}") # relative to the tree, or absolute
ACCOUNTS=${BENCH_NH_ACCOUNTS:-1000}
PER=${BENCH_NH_PER:-10}
IDLE=${BENCH_NH_IDLE:-30}
PROFILES=${BENCH_NH_PROFILES:-notify idle}
ABQ=18850 ADM=18851 IMAP=18852
. bench/lib.sh

if [ -z "${BENCH_NH_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "native_held.sh: needs root" >&2; exit 1; }
	need ss iproute2
	need curl curl
	need unshare util-linux
	command -v dovecot >/dev/null || { echo "native_held.sh: needs dovecot (tests/fixture/install.sh)" >&2; exit 1; }
	build_native
	BENCH_NH_NETNS=1 exec unshare -n -- "$0" "$@"
fi

ABQD=${BENCH_ABQD:-$B/src/daemon/abqd}
ABQCTL=$B/src/ctl/abqctl
NDEV=$((ACCOUNTS * PER))
ip link set lo up
sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
sysctl -qw net.core.somaxconn=8192

# Dovecot watches each session's mailboxes with inotify (NOTIFY and IDLE are
# answered from it): one instance per imap process, all of the mail user's, and
# the kernel's default of 128 per user makes the rest poll every 30 s. Raised
# for the run (as a mail server with thousands of sessions must be), then put back.
ino_inst=$(cat /proc/sys/fs/inotify/max_user_instances)
ino_watch=$(cat /proc/sys/fs/inotify/max_user_watches)
sysctl -qw fs.inotify.max_user_instances=65536 fs.inotify.max_user_watches=1048576

dove_up=
cleanup_more() {
	sysctl -qw fs.inotify.max_user_instances="$ino_inst" fs.inotify.max_user_watches="$ino_watch" || true
	[ -z "${BENCH_LOG:-}" ] || cp "$tmp/abqd/stderr" bench/out/native-held-abqd.log 2>/dev/null || true
	tail -n 2000 "$tmp/dovecot/dovecot.log" >bench/out/native-held-dovecot.log 2>/dev/null || true
	[ -z "$dove_up" ] || dovecot -c "$tmp/dovecot/dovecot.conf" stop 2>/dev/null || true
}
bench_init native-held
chmod 755 "$tmp"
ctl() { "$ABQCTL" -c "$tmp/abqd/abqd.conf" "$@"; }
mib() { awk "BEGIN { printf \"%.1f\", $1 / 1024 }"; }
metric() { # NAME{LABELS} -> value
	curl -s "http://127.0.0.1:$ADM/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}
# Dovecot's imap processes: this run's (children of its master), not others'.
dove_imap() { pgrep -x imap -P "$(cat "$tmp/dovecot/run/master.pid")" || true; }
imap_procs() { dove_imap | wc -l; }
imap_kib() { # FIELD (Rss or Pss) summed over Dovecot's imap processes
	local s=0 p v
	for p in $(dove_imap); do
		v=$(awk -v f="$1:" '$1 == f { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

# Dovecot: the mail user owns the Maildirs.
mkdir -p "$tmp/dovecot/run" "$tmp/dovecot/state" "$tmp/mail"
chown mail:mail "$tmp/mail"
MU=$(id -u mail) MG=$(id -g mail)
cat >"$tmp/dovecot/dovecot.conf" <<EOF
# abqd bench/native_held.sh
protocols = imap
listen = 127.0.0.1 127.0.0.2
base_dir = $tmp/dovecot/run
state_dir = $tmp/dovecot/state
log_path = $tmp/dovecot/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 10M
first_valid_uid = $MU
first_valid_gid = $MG
mail_location = maildir:~/Maildir
mailbox_list_index = yes
passdb {
  driver = static
  args = password=secret
}
userdb {
  driver = static
  args = uid=$MU gid=$MG home=$tmp/mail/%u
}
namespace inbox {
  inbox = yes
  separator = /
}
default_process_limit = 20000
default_client_limit = 40000
default_vsz_limit = 0
protocol imap {
  mail_max_userip_connections = 50
}
service imap-login {
  inet_listener imap {
    port = $IMAP
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 20000
}
service imap {
  process_limit = 20000
}
service anvil {
  client_limit = 60000
}
service auth {
  client_limit = 60000
}
EOF
dovecot -c "$tmp/dovecot/dovecot.conf"
dove_up=1
wait_port "$IMAP"
caps=$(curl -sS --max-time 10 -u bench0000:secret "imap://127.0.0.1:$IMAP" -X CAPABILITY |
	sed -n 's/^\* CAPABILITY //p' | tr -d '\r' | head -n 1)
grep -q -w NOTIFY <<<"$caps" || { echo "native_held.sh: Dovecot offers no NOTIFY: $caps" >&2; exit 1; }
cat >>"$tmp/dovecot/dovecot.conf" <<EOF
local 127.0.0.2 {
  protocol imap {
    imap_capability = $(tr ' ' '\n' <<<"$caps" | grep -v -x NOTIFY | tr '\n' ' ' | sed 's/ $//')
  }
}
EOF
doveadm -c "$tmp/dovecot/dovecot.conf" reload
sleep 1

say "== native held benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg); $NDEV held Pings over $ACCOUNTS accounts ($PER devices each, one Ping per device); Dovecot $(dovecot --version | cut -d' ' -f1); abqd workers 1; hard RLIMIT_NOFILE $(ulimit -Hn)"

for prof in $PROFILES; do
	case $prof in
	notify) host=127.0.0.1 ;;
	idle) host=127.0.0.2 ;;
	*) echo "native_held.sh: unknown profile $prof" >&2; exit 1 ;;
	esac
	rm -rf "$tmp/abqd"
	mkdir -p "$tmp/abqd"
	cat >"$tmp/abqd/abqd.conf" <<EOF
[eas]
listen = 127.0.0.1:$ABQ
workers = 1
max_connections_per_address = 1000000
[upstream]
url = imap://$host:$IMAP
max_connections_per_account = 3
[auth]
max_probes_per_address = 10000
[store]
url = sqlite:abqd.db
[admin]
listen = 127.0.0.1:$ADM
metrics_public = yes
[log]
level = ${BENCH_LOG:-warn}
EOF
	ctl init >/dev/null
	ctl config global set attribute abqMode value Permissive >/dev/null
	abqd_spawn "$tmp/abqd"
	apid=${pids[-1]}
	wait_port "$ABQ"
	sleep 0.5
	grep -q abqd "/proc/$apid/comm" || { echo "abqd pid not found"; exit 1; }
	say "-- profile $prof (abqd -> imap://$host:$IMAP; CAPABILITY there $(curl -sS -u bench0000:secret "imap://$host:$IMAP" -X CAPABILITY | grep -c -w NOTIFY || true) NOTIFY)"

	t0=$(date +%s.%N)
	python3 bench/mailbox_clients.py --port "$ABQ" prep --prefix BENCHN --devices "$NDEV" \
		--accounts "$ACCOUNTS" --user bench --password secret >"$tmp/prep.log"
	cut -c1-400 "$tmp/prep.log" | tee -a "$out"
	inbox=$(grep -o "'inbox [^']*'" "$tmp/prep.log" | grep -v None | sort | uniq -c | sort -rn | head -1 | awk '{ print $3 }' | tr -d "'")
	ninbox=$(grep -o "'inbox [^']*'" "$tmp/prep.log" | grep -v None | sort -u | wc -l)
	{ stderr_summary "$tmp/abqd/stderr" || true; } | tee -a "$out"
	[ "$ninbox" = 1 ] || { echo "native_held.sh: the accounts' Inbox ids differ ($ninbox); one --inbox cannot serve them" >&2; exit 1; }
	say "prepared $NDEV devices in $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }") s (the Inbox's id: $inbox)"
	sleep 3
	rss0=$(rss_kib "$apid") procs0=$(imap_procs) conns0=$(estab "dport = :$IMAP")

	t0=$(date +%s.%N)
	python3 bench/mailbox_clients.py --port "$ABQ" hold --prefix BENCHN --devices "$NDEV" --per 1 \
		--accounts "$ACCOUNTS" --user bench --password secret --inbox "$inbox" --addrs 20 \
		--heartbeat 1800 --settle 2 --batch 250 --pause 0.5 >"$tmp/hold.log" 2>&1 &
	cpid=$!
	pids+=($cpid)
	for _ in $(seq 1500); do grep -q '^clients opened' "$tmp/hold.log" && break; sleep 0.2; done
	grep '^clients opened' "$tmp/hold.log" | cut -c1-300 | tee -a "$out"
	grep '^early' "$tmp/hold.log" | head -5 | tee -a "$out" || true
	last=-1 still=0 g=0
	for _ in $(seq 1200); do
		g=$(metric 'abqd_held_requests{kind="native"}')
		g=${g:-0}
		[ "$g" -ge "$NDEV" ] && break
		if [ "$g" = "$last" ]; then still=$((still + 1)); else still=0 last=$g; fi
		[ "$still" -ge 20 ] && break
		sleep 0.5
	done
	say "all held after $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }") s (abqd's gauge: $g)"
	# The commands' pool logs out a connection idle for 60 s: measure the
	# steady state, when only the watchers' connections are left.
	pool_busy=$(metric 'abqd_imap_connections{use="commands"}') t1=$(date +%s.%N)
	for _ in $(seq 100); do
		[ "$(metric 'abqd_imap_connections{use="commands"}')" = 0 ] && break
		sleep 1
	done
	say "the commands' IMAP connections: $pool_busy when all were held, 0 after $(awk "BEGIN { printf \"%.0f\", $(date +%s.%N) - $t1 }") s more (their idle time is up)"
	sleep 2
	rss1=$(rss_kib "$apid")
	fds=$(ls "/proc/$apid/fd" | wc -l)
	conns=$(estab "dport = :$IMAP")
	push_g=$(metric 'abqd_imap_connections{use="push"}')
	pool_g=$(metric 'abqd_imap_connections{use="commands"}')
	procs=$(imap_procs) irss=$(imap_kib Rss) ipss=$(imap_kib Pss)
	c0=$(cpu_ticks "$apid")
	sleep "$IDLE"
	c1=$(cpu_ticks "$apid")
	hz=$(getconf CLK_TCK)
	say "native_held_${prof}_held $g"
	say "native_held_${prof}_rss_before_kib $rss0 ($(mib "$rss0") MiB, $NDEV devices prepared)"
	say "native_held_${prof}_rss_kib $rss1 ($(mib "$rss1") MiB)"
	say "native_held_${prof}_rss_kib_per_held $(awk "BEGIN { printf \"%.2f\", ($rss1 - $rss0) / ($g > 0 ? $g : 1) }")"
	say "native_held_${prof}_cpu_percent_${IDLE}s $(awk "BEGIN { printf \"%.2f\", ($c1 - $c0) * 100 / $hz / $IDLE }") (100 = one core)"
	say "native_held_${prof}_fds $fds"
	say "native_held_${prof}_imap_connections $conns (before the Pings: $conns0; abqd's gauge: push ${push_g:-?}, commands ${pool_g:-?})"
	say "native_held_${prof}_dovecot_imap_processes $procs (before the Pings: $procs0)"
	say "native_held_${prof}_dovecot_imap_rss_kib $irss ($(mib "$irss") MiB; PSS $(mib "$ipss") MiB; $(awk "BEGIN { printf \"%.0f\", $ipss / ($procs > 0 ? $procs : 1) }") KiB PSS per process)"

	# Push at scale: one account gets mail; its PER Pings answer, the rest stay.
	acct=bench0007
	before=$(grep -c '^answer' "$tmp/hold.log" || true)
	ts=$(python3 - "$IMAP" "$acct" <<'PYEOF'
import imaplib, sys, time
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login(sys.argv[2], "secret")
msg = b"From: b@example.test\r\nTo: %s@example.test\r\nSubject: push at scale\r\n\r\nhello\r\n" % sys.argv[2].encode()
c.append("INBOX", None, None, msg)
print("%.6f" % time.time())
c.logout()
PYEOF
)
	for _ in $(seq 100); do
		[ "$(grep -c '^answer' "$tmp/hold.log" || true)" -ge $((before + PER)) ] && break
		sleep 0.1
	done
	sleep 2
	{ grep '^answer' "$tmp/hold.log" || true; } | tail -n +$((before + 1)) >"$tmp/answers"
	mine=$(awk -v s=7 -v k="$ACCOUNTS" '{ d = substr($2, 7) + 0; if (d % k == s) n++ } END { print n + 0 }' "$tmp/answers")
	others=$(($(wc -l <"$tmp/answers") - mine))
	awk -v ts="$ts" -v k="$ACCOUNTS" '{ d = substr($2, 7) + 0; if (d % k == 7) printf "%.1f %s/%s\n", ($5 - ts) * 1000, $3, $4 }' \
		"$tmp/answers" | sort -n >"$tmp/push"
	say "native_held_${prof}_push_ms $(awk '{ v[NR] = $1 } END { if (NR) printf "min %s median %s max %s", v[1], v[int((NR + 1) / 2)], v[NR]; else printf "none" }' "$tmp/push") ($mine of $PER Pings of $acct answered, statuses $(awk '{ print $2 }' "$tmp/push" | sort | uniq -c | awk '{ printf "%s x%d ", $2, $1 }'); answers to other accounts' devices: $others)"

	kill "$cpid" 2>/dev/null || true
	wait "$cpid" 2>/dev/null || true
	kill "$apid" 2>/dev/null || true
	wait "$apid" 2>/dev/null || true
	{ stderr_summary "$tmp/abqd/stderr" || true; } | tee -a "$out"
	sleep 2
done
