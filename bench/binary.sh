#!/usr/bin/env bash
# What reading the base's Traefik binary costs (issue 20's bar: "the first
# build of a new base digest costs at most one streamed layer"; "a warm push
# stays <= 1.5x crane append"), in one run on the same inputs:
#   first-digest  rebase onto a new base digest (its binary's layer is new:
#                 a nonce file beside the binary), verdict and plugin layer
#                 cached: the one thing left to do is streaming that layer
#   warm-push     build -> push of the same recipe, every cache warm: the
#                 binary's record answers, no layer is read
#   crane-append  crane append of the plugin tree onto the base, pushed
# Medians of RUNS runs (hyperfine, or /usr/bin/time loops at 10 ms), peak RSS of one
# run, and the registry's blob GETs (count and bytes) of one run. The base is
# one layer holding the real Traefik binary (scripts/traefik-binary), pushed to
# a loopback Debian docker-registry.
set -euo pipefail

RUNS=${RUNS:-5}
export BENCH_NO_BUILDAH=1
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
export SOURCE_DATE_EPOCH=$EPOCH
export XDG_CONFIG_HOME=$work/config

start_registry
host=linux/$(go env GOARCH)
base=$reg/library/traefik:v3
base_root
# new_base: the base again with a nonce beside the binary, so that its one
# layer (and so its digest) is new.
new_base() {
	date +%s%N >"$work/baseroot/etc/xtraefik-bench-nonce"
	tar --sort=name --mtime=@$EPOCH --owner=0 --group=0 --numeric-owner -C "$work/baseroot" -cf "$work/base.tar" .
	"$crane" append --oci-empty-base -f "$work/base.tar" -t "$base" >/dev/null 2>&1 || die "crane append (base) failed"
	"$crane" mutate "$base" --set-platform "$host" --entrypoint traefik \
		--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--label org.opencontainers.image.version="$TRAEFIK_VERSION" -t "$base" >/dev/null 2>&1 || die "crane mutate (base) failed"
	rm -f "$work/base.tar"
}
log "base ($base_kind, $base_size): $base"
new_base
build_xtraefik
xt=$work/bin/xtraefik
[ -x "$xt" ] || die "no xtraefik"
# Used by the prepare step of first-digest (a fresh shell).
declare -f new_base >"$work/new_base.sh"
cat >"$work/prepare.sh" <<PREP
set -e
work=$work crane=$crane base=$base host=$host EPOCH=$EPOCH TRAEFIK_VERSION=$TRAEFIK_VERSION
die() { echo "\$*" >&2; exit 1; }
. $work/new_base.sh
new_base
PREP

demo=$(go_module github.com/traefik/plugindemo@v0.2.2)
git_repo "$work/git/demo" "$demo" v0.2.2
start_gitd "$work/git" demo
mkdir -p "$work/r"
cat >"$work/r/recipe.yaml" <<R
base: docker://$base
plugins:
  demo:
    module: github.com/traefik/plugindemo
    git: git://127.0.0.1:$gport/demo
    ref: v0.2.2
R
warm=$work/warm
"$xt" lock -q -f "$work/r/recipe.yaml" --cache-dir "$warm" >/dev/null 2>"$work/lock.err" || die "lock: $(tail -3 "$work/lock.err")"
"$xt" build -q -f "$work/r/recipe.yaml" --cache-dir "$warm" --insecure-registry "$reg" --push "$reg/bench/warm:latest" >/dev/null 2>"$work/first.err" ||
	die "first build: $(tail -3 "$work/first.err")"
ctx=$work/ctx
mkdir -p "$ctx/plugins-local/src/github.com/traefik/plugindemo"
cp -R "$demo/." "$ctx/plugins-local/src/github.com/traefik/plugindemo/"
chmod -R u+w "$ctx"
tar --sort=name --mtime=@$EPOCH --owner=0 --group=0 --numeric-owner --format=gnu -C "$ctx" -cf "$work/plugins.tar" plugins-local

# blob_gets CMD: runs CMD and prints the registry's blob GETs meanwhile
# (count and bytes sent, from its access log).
blob_gets() {
	local before
	before=$(wc -l <"$work/registry/log")
	bash -c "$1" >/dev/null 2>&1
	sleep 0.2
	tail -n +"$((before + 1))" "$work/registry/log" | { grep -E '"GET /v2/[^ ]*/blobs/sha256:' || true; } |
		awk 'match($0, /HTTP\/1\.[01]" [0-9]+ [0-9]+/) {split(substr($0, RSTART, RLENGTH), f, " "); n++; b += f[3]; if (f[3] > m) m = f[3]}
			END {printf "%d blob GET(s), %.1f MB (largest %.1f MB)\n", n, b/1e6, m/1e6}'
}

declare -A MED MIN MAX RSS NOTE GETS TIMINGS
order=()
row() { # NAME NOTE PREPARE CMD
	local name=$1 prepare=$3 cmd=$4
	measure "$@"
	[ -z "$prepare" ] || bash -c "$prepare" >/dev/null 2>&1
	GETS[$name]=$(blob_gets "$cmd")
	case $cmd in
	"$xt "*) xtraefik_timings "$name" "$prepare" "$cmd" ;;
	esac
}

xr="$xt rebase -q -f $work/r/recipe.yaml --cache-dir $warm --insecure-registry $reg --push $reg/bench/rebased:latest"
xb="$xt build -q -f $work/r/recipe.yaml --cache-dir $warm --insecure-registry $reg --push $reg/bench/warm:latest"
row first-digest "rebase onto a new base digest (binary layer streamed)" "bash $work/prepare.sh" "$xr"
# The lock now pins the last new base; its record is in the cache.
row warm-push "build -> push, every cache warm (record answers)" "" "$xb"
row crane-append "crane append + push of the plugin tree" "" "$crane append -b $base -f $work/plugins.tar -t $reg/bench/crane:latest"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a/b; else print "-" }'; }
printf '\n%s; base: one layer, %s (%s), %s; plugindemo v0.2.2 from a git daemon; registry Distribution on loopback; %s CPU(s).\n' \
	"$(date -u +%F)" "$base_kind" "$base_size" "$host" "$(nproc)"
printf 'Median (min-max) of %s runs; peak RSS of one run; blob GETs of one run.\n\n' "$RUNS"
printf '| %-13s | %-55s | %-22s | %-8s | %-42s | %s |\n' row what "wall s, median (range)" "peak RSS" "registry blob GETs (one run)" "xtraefik timingsMs (one -o json run)"
printf '|%s|%s|%s|%s|%s|%s|\n' --------------- --------------------------------------------------------- ------------------------ ---------- -------------------------------------------- ------
for n in "${order[@]}"; do
	printf '| %-13s | %-55s | %-22s | %-8s | %-42s | %s |\n' "$n" "${NOTE[$n]}" "${MED[$n]} (${MIN[$n]}-${MAX[$n]})" "${RSS[$n]} MiB" "${GETS[$n]}" "${TIMINGS[$n]:--}"
done
printf '\n| figure | value | bar |\n|---|---|---|\n'
printf '| first build of a new base digest - warm push (the streamed layer) | %.3f s | at most one streamed layer |\n' \
	"$(awk -v a="${MED[first-digest]}" -v b="${MED[warm-push]}" 'BEGIN {print a-b}')"
printf '| warm push / crane append | %s | <= 1.5x |\n' "$(ratio "${MED[warm-push]}" "${MED[crane-append]}")"
