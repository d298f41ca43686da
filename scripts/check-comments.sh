#!/bin/sh
# Every function definition in the files given (default: src/daemon, src/admin)
# has a comment right above it, saying what it does and why (docs/internals/HACKING.md).
# Prints each one that lacks it as file:line: name, and exits 1 when there is any.
cd "$(dirname "$0")/.." || exit 2
[ $# -gt 0 ] || set -- src/daemon/*.c src/admin/*.c
awk '
FNR == 1 { prev = ""; prev2 = "" }
/^[A-Za-z_][A-Za-z0-9_]*\(/ && prev ~ /^[A-Za-z_]/ && prev !~ /;[ \t]*$/ && prev !~ /^#/ {
	name = $0
	sub(/\(.*/, "", name)
	if (prev2 !~ /\*\/[ \t]*$/) {
		printf "%s:%d: %s\n", FILENAME, FNR, name
		bad = 1
	}
}
{ prev2 = prev; prev = $0 }
END { exit bad }
' "$@"
