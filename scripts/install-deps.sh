#!/bin/sh
# Install the Debian packages abqd needs to build and test, if any are missing.
# Runs apt-get only when something is missing; needs root for that.
set -eu

PKGS="build-essential cmake ninja-build pkg-config clang-format valgrind python3 sqlite3
libsqlite3-dev libpcre2-dev libjansson-dev libinih-dev libcmocka-dev libevent-dev
libhttp-parser-dev libxml2-dev libcurl4-openssl-dev libssl-dev libpq-dev libwbxml2-utils opensmtpd postgresql
libcrypt-dev chromium nodejs
libgmime-3.0-dev libical-dev libicu-dev tzdata radicale libldap2-dev slapd ldap-utils"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# The browser tests' npm: Debian's package, unless the nodejs installed brings
# its own (some nodejs builds conflict with Debian's npm).
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
# Keep maintainer scripts from starting system services (the OpenSMTPD the
# notice tests run is their own, on its own port), unless a policy exists.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# temporary, written by abqd scripts/install-deps.sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT INT TERM
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
