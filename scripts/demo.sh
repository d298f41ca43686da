#!/bin/sh
# make run: the demo. Starts the test fixture (a real SOGo ActiveSync server
# with users alice/secret and bob/secret on loopback), initialises the store
# under ./var/ in mode Interactive, and runs abqd in front of the fixture in the
# foreground on 127.0.0.1:8080. Ctrl-C stops abqd and the fixture.
# With ABQD_CONFIG=FILE it runs abqd with that file and starts no fixture.
set -eu
build=$1
conf=$2
abqd="$build/src/daemon/abqd"
abqctl="$build/src/ctl/abqctl"

if [ -n "${ABQD_CONFIG:-}" ]; then
	exec "$abqd" -d -c "$ABQD_CONFIG"
fi

fixdir=${ABQ_FIX_DIR:-/tmp/abqd-fixture}
tests/fixture/install.sh
tests/fixture/upstream.sh up --dir "$fixdir" >/dev/null </dev/null
. "$fixdir/fixture.env"
trap 'tests/fixture/upstream.sh down --dir "$fixdir" >/dev/null 2>&1 || true' EXIT INT TERM

mkdir -p "$(dirname "$conf")"
if [ ! -f "$conf" ]; then
	cat >"$conf" <<CONF
; abqd demo configuration, written by 'make run'. Paths are relative to this folder.
[eas]
listen = 127.0.0.1:8080
default_domain = example.test
[upstream]
url = http://127.0.0.1:${ABQ_FIX_SOGO_PORT:-20000}/SOGo/Microsoft-Server-ActiveSync
[store]
url = sqlite:abqd.db
[admin]
listen = 127.0.0.1:8081
CONF
	echo "wrote $conf"
fi
if "$abqctl" -c "$conf" init | grep -q "^created"; then
	"$abqctl" -c "$conf" config global set attribute abqMode value Interactive >/dev/null
fi

# A demo administrator for the web console, with a new password each run.
admin=demo
adminpw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
if ! printf '%s\n' "$adminpw" | "$abqctl" -c "$conf" admin add "$admin" >/dev/null 2>&1; then
	printf '%s\n' "$adminpw" | "$abqctl" -c "$conf" admin passwd "$admin" >/dev/null
fi

cat <<TXT

abqd demo: EAS on http://127.0.0.1:8080/Microsoft-Server-ActiveSync in front of
SOGo ($ABQ_FIX_URL),
mode $("$abqctl" -c "$conf" config global get attribute abqMode --json | sed -n 's/.*"value": *"\([^"]*\)".*/\1/p').

Be a phone (FolderSync as alice, device DEMOPHONE1):
  printf '\003\001\152\000\000\007\126\122\003\060\000\001\001' >/tmp/fs.wbxml
  curl -s -u alice:secret -H 'MS-ASProtocolVersion: 14.1' \\
    -H 'Content-Type: application/vnd.ms-sync.wbxml' --data-binary @/tmp/fs.wbxml \\
    'http://127.0.0.1:8080/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=DEMOPHONE1&DeviceType=iPhone' \\
    | wbxml2xml -l ACTIVESYNC -m 0 -o - /dev/stdin
  (Quarantined: abqd answers itself with the quarantine mailbox, an Inbox holding one
  message that says the phone has been put in quarantine. Allow it, ask again: the
  real folders.)
Administer in the web console: http://127.0.0.1:8081/
  name $admin, password $adminpw
Or (in another terminal):
  $abqctl -c $conf mobile abq list status Quarantined
  $abqctl -c $conf mobile abq allow DEMOPHONE1
  $abqctl -c $conf mobile abq block DEMOPHONE1
Ctrl-C stops abqd and the fixture.

TXT
"$abqd" -d -c "$conf"
