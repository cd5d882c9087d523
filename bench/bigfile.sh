#!/usr/bin/env bash
# Memory of a build with a big plugin file and with --sbom-dir:
#   small     xtraefik build --oci-layout, a directory plugin (plugindemo)
#   big       the same plugin plus a 200 MB random data file
#   git-small small from a git repository (git daemon), first fetch into the git
#             cache: the baseline of git-cold
#   git-cold  big from a git repository (git daemon), first fetch into the git cache
#   git-big   the same again, the git cache warm
#   big-verify big with --no-verdict-cache: verified again, the tree laid out
#             for the interpreter
#   sbom      the small build with --sbom-dir
# Reports the peak RSS (/usr/bin/time -v, largest process of the run) and the
# wall time of one run each, after one warm-up build (workers, verdict cache).
# The base is in a loopback Debian docker-registry, built as bench/peers.sh
# builds it (the real Traefik binary when cached, else a 64 MiB stand-in).
# See bench/README.md.
set -euo pipefail

PLUGIN_MODULE=github.com/traefik/plugindemo
PLUGIN_VERSION=v0.2.2
BIG_MB=${BIG_MB:-200}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

start_registry
base=$reg/library/traefik:$TRAEFIK_VERSION
base_root
log "base image ($base_kind) -> $base"
make_base "$base" "linux/$(go env GOARCH)"

# --- the plugins -------------------------------------------------------------
moddir=$(go_module "$PLUGIN_MODULE@$PLUGIN_VERSION")
for v in small big; do
	mkdir -p "$work/plugin-$v"
	cp -R "$moddir/." "$work/plugin-$v/"
	chmod -R u+w "$work/plugin-$v"
done
head -c $((BIG_MB * 1000 * 1000)) /dev/urandom >"$work/plugin-big/data.bin"
for v in small big; do
	mkdir -p "$work/recipe-$v"
	cat >"$work/recipe-$v/recipe.yaml" <<EOF
base: $base
plugins:
  demo:
    module: $PLUGIN_MODULE
    path: $work/plugin-$v
EOF
done

# The big plugin as a git repository too, served by git daemon: a file://
# URL would run go-git's own upload-pack in the xtraefik process, and
# measure that.
for v in small big; do
	git_repo "$work/git-$v" "$work/plugin-$v" "$PLUGIN_VERSION"
done
start_gitd "$work" git-big
for v in small big; do
	mkdir -p "$work/recipe-git-$v"
	cat >"$work/recipe-git-$v/recipe.yaml" <<EOF
base: $base
plugins:
  demo:
    module: $PLUGIN_MODULE
    git: git://127.0.0.1:$gport/git-$v
    ref: $PLUGIN_VERSION
EOF
done

build_xtraefik

export SOURCE_DATE_EPOCH=$EPOCH
xt=$work/bin/xtraefik
xt_cache=$work/xt-cache
build() { # VARIANT ARGS...
	local v=$1
	shift
	"$xt" build -f "$work/recipe-$v/recipe.yaml" --cache-dir "$xt_cache" --oci-layout "$work/layout-$v" --overwrite "$@"
}
log "warm-up builds (verification workers, verdict cache)"
for v in small big; do
	build "$v" >"$work/warm-$v.log" 2>&1 || die "warm-up build ($v) failed: $(tail -5 "$work/warm-$v.log")"
done

declare -A RSS WALL
order=(small big git-small git-cold git-big big-verify sbom)
measure() { # NAME VARIANT ARGS...
	local name=$1 v=$2
	shift 2
	/usr/bin/time -v -o "$work/$name.time" "$xt" build -f "$work/recipe-$v/recipe.yaml" --cache-dir "$xt_cache" \
		--oci-layout "$work/layout-$v" --overwrite "$@" >"$work/$name.log" 2>&1 || die "$name failed: $(tail -5 "$work/$name.log")"
	RSS[$name]=$(awk -F: '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/$name.time")
	WALL[$name]=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$work/$name.time")
}
log "measuring"
measure small small
measure big big
measure git-small git-small
measure git-cold git-big
measure git-big git-big
measure big-verify big --no-verdict-cache
measure sbom small --sbom-dir "$work/sbom"
[ -s "$work/sbom/sbom.spdx.json" ] || die "no SBOM written"

printf '\nBase: %s; plugin %s@%s as a directory; big = the same plus a %s MB random file; %s CPU(s).\n' \
	"$base_kind" "$PLUGIN_MODULE" "$PLUGIN_VERSION" "$BIG_MB" "$(nproc)"
printf 'One run each after a warm-up build: xtraefik build --oci-layout (verdict cache warm but for big-verify; git cache cold for git-small and git-cold).\n\n'
printf '| %-10s | %-10s | %-9s |\n' run "peak RSS" "wall"
printf '|%s|%s|%s|\n' ------------ ------------ -----------
for n in "${order[@]}"; do
	printf '| %-10s | %-10s | %-9s |\n' "$n" "${RSS[$n]} MiB" "${WALL[$n]}"
done
