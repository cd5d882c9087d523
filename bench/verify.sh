#!/usr/bin/env bash
# Verification cost per real plugin, side by side in one run:
#   prepared  xtraefik's verification as build runs it (contained worker started
#             while the plugins are fetched): layout, static checks, import, New,
#             one request, in a sandboxed process
#   cold      the same with the worker started on demand (no preparation)
#   bare      what Traefik itself does in process: new interpreter, import,
#             CreateConfig, New (the goal: prepared <= 1.2x bare)
# and every plugin at once (VerifyAll). Plugins: every middleware of the test
# corpus that verifies OK (real plugins from the Go module proxy, all served
# versions) plus a vendoring fixture. Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
out=$(go test ./verify -run '^$' -bench 'BenchmarkVerifyPrepared|BenchmarkVerify$|BenchmarkBareYaegi|BenchmarkVerifyAll' \
	-benchtime "${N}x" -count 1 2>/dev/null | grep '^Benchmark')
rows=$(echo "$out" | awk '
	{
		split($1, a, "/"); kind = a[1]; name = a[2]; sub(/-[0-9]+$/, "", name)
		ms = $3 / 1e6
		if (kind == "BenchmarkVerifyPrepared") prep[name] = ms
		else if (kind == "BenchmarkVerify") cold[name] = ms
		else if (kind == "BenchmarkBareYaegi") bare[name] = ms
		if (name != "") names[name] = 1
	}
	END { for (k in names) printf "%s %.1f %.1f %.1f\n", k, prep[k], cold[k], bare[k] }' | sort)
all=$(echo "$out" | awk '/^BenchmarkVerifyAll/ { printf "%.1f", $3 / 1e6 }')
printf '%-28s %12s %10s %10s %15s\n' plugin "prepared ms" "cold ms" "bare ms" prepared/bare
echo "$rows" | awk '{ printf "%-28s %12.1f %10.1f %10.1f %14.2fx\n", $1, $2, $3, $4, $2 / $4; sp += $2; sb += $4; n++ }
	END { printf "%-28s %12.1f %10s %10.1f %14.2fx\n", "sum, one after another", sp, "", sb, sp / sb }'
echo "all $(echo "$rows" | wc -l) plugins in one Verify (one version per module, concurrent): $all ms"
