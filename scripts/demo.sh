#!/bin/sh
# make run: until the abqd daemon lands, initialise the demo store under ./var/
# and show what abqctl sees. With ABQD_CONFIG=FILE it uses that config instead.
set -eu
abqctl=$1
conf=${ABQD_CONFIG:-$2}

if [ -z "${ABQD_CONFIG:-}" ] && [ ! -f "$conf" ]; then
	mkdir -p "$(dirname "$conf")"
	cat >"$conf" <<'CONF'
; abqd demo configuration, written by 'make run'. Paths are relative to this folder.
[eas]
listen = 127.0.0.1:8080
default_domain = example.test
[upstream]
url = http://127.0.0.1:20000/SOGo/Microsoft-Server-ActiveSync
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
echo
echo "== abqctl -c $conf config global get"
"$abqctl" -c "$conf" config global get
echo
echo "== abqctl -c $conf mobile abq listRules"
"$abqctl" -c "$conf" mobile abq listRules
echo
echo "== abqctl -c $conf mobile abq list"
"$abqctl" -c "$conf" mobile abq list
cat <<TXT

The store is ready; the abqd daemon is not part of this version yet.
Try, for example:
  $abqctl -c $conf mobile abq allow APPL1234 account alice@example.test
  $abqctl -c $conf mobile abq setRule 'SM-*' Blocked 10 characteristic DeviceModel match glob
  $abqctl -c $conf config domain example.test set attribute abqMode value Strict --dry-run
  $abqctl -c $conf mobile abq history
TXT
