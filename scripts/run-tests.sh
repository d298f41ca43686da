#!/bin/sh
# Run every CTest suite in each build folder given, then print one closing line
# "abqd tests: N passed, N failed" over all of them. Exit non-zero on any failure.
set -u
jobs=$(nproc 2>/dev/null || echo 2)
pass=0; fail=0; status=0
for b in "$@"; do
	echo "== ctest in $b"
	log="$b/ctest-summary.log"
	ctest --test-dir "$b" --output-on-failure -j"$jobs" 2>&1 | tee "$log"
	[ "$(tail -n 50 "$log" | grep -c '100% tests passed')" -eq 1 ] || status=1
	p=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' "$log" | tail -n 1)
	[ -n "$p" ] || { status=1; continue; }
	total=${p% *}; failed=${p#* }
	pass=$((pass + total - failed)); fail=$((fail + failed))
done
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$status" -eq 0 ]
