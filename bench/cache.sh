#!/usr/bin/env bash
# The caching work's performance goals, measured side by side in one run on
# the same inputs (see bench/README.md, "Caches: bench/cache.sh"):
#   1. build -> OCI layout with a cached base <= 0.25x buildah bud, base in storage
#   2. CLI build -> push with cached verdicts <= 1.5x crane append
#   3. 20 plugins x 3 platforms <= 1.3x 20 plugins x 1 platform; a rebuild of an
#      unchanged lock with every cache warm <= 0.5 s, verification included
#   4. a fresh runner (empty --cache-dir) from --cache-repo (trusting the
#      writer's key, and another key, which fetches and verifies again)
#      against one from git
#   5. peak RSS <= 64 MB for every xtraefik build above, --sbom-dir included
# Medians of RUNS runs (hyperfine), peak RSS of one run (/usr/bin/time -v).
# Everything is on loopback: a Debian docker-registry, a git daemon.
set -euo pipefail

RUNS=${RUNS:-5}
PLUGINS=${PLUGINS:-20}
# The real plugins the copies are made of (Go module proxy); copy k>0 of a
# plugin is the same tree under the module path example.com/bench/c<k>/<name>.
SOURCES=(github.com/traefik/plugindemo@v0.2.2 github.com/tomMoulard/fail2ban@v0.9.0 github.com/PascalMinder/geoblock@v0.3.8)
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
export SOURCE_DATE_EPOCH=$EPOCH
# The local caches' key lives in the work directory, never in ~/.config.
export XDG_CONFIG_HOME=$work/config
# The fleet cache's writer signs with a key pair of its own.
openssl genpkey -algorithm ed25519 -out "$work/cache.key" 2>/dev/null
openssl pkey -in "$work/cache.key" -pubout -out "$work/cache.pub"

start_registry
arch=$(go env GOARCH)
host=linux/$arch
plats=("$host")
for p in linux/amd64 linux/arm64 linux/arm/v7; do [ "$p" = "$host" ] || plats+=("$p"); done
plats=("${plats[@]:0:3}")

# --- bases -------------------------------------------------------------------
base_root
base1=$reg/library/traefik:$TRAEFIK_VERSION
base3=$reg/library/traefik-multi:$TRAEFIK_VERSION
log "bases ($base_kind, $base_size): $base1 ($host), $base3 (${plats[*]})"
make_base "$base1" "$host"
make_index "$base3" "${plats[@]}"
build_xtraefik
xt=$work/bin/xtraefik

# --- plugins -----------------------------------------------------------------
log "$PLUGINS plugins from ${#SOURCES[@]} real ones, as git repositories"
gitroot=$work/git
entries=
for i in $(seq 0 $((PLUGINS - 1))); do
	s=${SOURCES[$((i % ${#SOURCES[@]}))]}
	mod=${s%@*} ver=${s#*@} k=$((i / ${#SOURCES[@]}))
	name=${mod##*/} newmod=$mod
	[ "$k" = 0 ] || newmod=example.com/bench/c$k/$name
	src=$work/src/p$i
	mkdir -p "$src"
	cp -R "$(go_module "$s")/." "$src/"
	chmod -R u+w "$src"
	if [ "$newmod" != "$mod" ]; then
		grep -rlIF "$mod" "$src" | while read -r f; do sed -i "s#$mod#$newmod#g" "$f"; done
	fi
	git_repo "$gitroot/p$i" "$src" "$ver"
	entries+="  p$i:
    module: $newmod
    git: git://127.0.0.1:GPORT/p$i
    ref: $ver
"
	[ "$i" = 0 ] && { demo_dir=$src demo_mod=$newmod; }
done
start_gitd "$gitroot" p0
entries=${entries//GPORT/$gport}

recipe() { # NAME BASE [PLATFORM]: a recipe directory with its lock
	local d=$work/r-$1
	mkdir -p "$d"
	{
		echo "base: $2"
		[ -z "${3:-}" ] || echo "platforms: [$3]"
		echo "plugins:"
		if [ "$1" = 1 ]; then echo "$entries" | head -4; else echo -n "$entries"; fi
	} >"$d/recipe.yaml"
	"$xt" lock -q -f "$d/recipe.yaml" --cache-dir "$work/warm" >/dev/null 2>"$d/lock.err" || die "lock $1: $(tail -3 "$d/lock.err")"
}
recipe 1 "$base1"
recipe 20x1 "$base3" "$host"
recipe 20x3 "$base3"

# --- peers -------------------------------------------------------------------
ctx=$work/ctx
mkdir -p "$ctx/plugins-local/src/$demo_mod"
cp -R "$demo_dir/." "$ctx/plugins-local/src/$demo_mod/"
find "$ctx" -type d -exec chmod 0755 {} +
find "$ctx" -type f -exec chmod 0644 {} +
printf 'FROM %s\nCOPY plugins-local /plugins-local\n' "$base1" >"$ctx/Dockerfile"
tar --sort=name --mtime=@$EPOCH --owner=0 --group=0 --numeric-owner --format=gnu \
	-C "$ctx" -cf "$work/plugins.tar" plugins-local
driver=overlay
bah_base="buildah --root $work/buildah/root --runroot $work/buildah/run --storage-driver"
if ! $bah_base overlay info >/dev/null 2>&1; then driver=vfs; fi
bah="$bah_base $driver"
$bah pull --quiet --tls-verify=false "$base1" >/dev/null 2>&1 || die "buildah pull failed"

# --- measuring ---------------------------------------------------------------
declare -A MED MIN MAX RSS NOTE TIMINGS REQS
order=()

# row NAME NOTE PREPARE CMD: median (and range) of RUNS runs, peak RSS of one
# more run, the registry requests of another; for xtraefik rows also the
# timingsMs of one more run (-o json).
row() {
	local name=$1 prepare=$3 cmd=$4
	measure "$@"
	[ -z "$prepare" ] || bash -c "$prepare" >/dev/null 2>&1
	REQS[$name]=$(requests_during "$cmd")
	case $cmd in
	*"$xt build"*) xtraefik_timings "$name" "$prepare" "$cmd" ;;
	esac
}

warm=$work/warm
xb() { echo "$xt build -q -f $work/r-$1/recipe.yaml --cache-dir $warm"; }

# Goal 1: OCI layout, cached base, against buildah bud with the base in storage.
row buildah-warm "bud, base in storage (1 plugin, 1 platform)" "" \
	"$bah bud --quiet --timestamp 0 --tls-verify=false --pull=false -f $ctx/Dockerfile $ctx"
row x1-layout "1 plugin x 1 platform -> OCI layout, caches warm" "" \
	"$(xb 1) --oci-layout $work/out-1 --overwrite"
# Goal 2: push with cached verdicts, against crane append.
row crane-append "append + push (1 plugin, 1 platform)" "" \
	"$crane append -b $base1 -f $work/plugins.tar -t $reg/bench/crane:latest"
row x1-push "1 plugin x 1 platform -> push, caches warm" "" \
	"$(xb 1) --push $reg/bench/x1:latest"
# Goal 3: 20 plugins, 1 and 3 platforms, every cache warm.
row x20x1-layout "$PLUGINS plugins x 1 platform -> OCI layout, warm" "" \
	"$(xb 20x1) --oci-layout $work/out-20x1 --overwrite"
row x20x3-layout "$PLUGINS plugins x 3 platforms -> OCI layout, warm" "" \
	"$(xb 20x3) --oci-layout $work/out-20x3 --overwrite"
row x20x1-push "$PLUGINS plugins x 1 platform -> push, warm" "" \
	"$(xb 20x1) --push $reg/bench/x20x1:latest"
row x20x3-push "$PLUGINS plugins x 3 platforms -> push, warm" "" \
	"$(xb 20x3) --push $reg/bench/x20x3:latest"
# Goal 5: the SBOM too.
row x20x3-sbom "$PLUGINS x 3 -> OCI layout + --sbom-dir, warm" "" \
	"$(xb 20x3) --oci-layout $work/out-sbom --sbom-dir $work/sbom --overwrite"
# Goal 4: a fresh runner. Runner A (signing with cache.key) fills the cache
# repository.
crepo=$reg/bench/cache
log "runner A fills $crepo"
"$xt" build -q -f "$work/r-20x3/recipe.yaml" --cache-dir "$work/runner-a" --cache-repo "$crepo" --cache-key "$work/cache.key" \
	--push "$reg/bench/runner-a:latest" >/dev/null 2>"$work/runner-a.err" || die "runner A: $(tail -3 "$work/runner-a.err")"
fresh="rm -rf $work/fresh"
xf="$xt build -q -f $work/r-20x3/recipe.yaml --cache-dir $work/fresh --push $reg/bench/fresh:latest"
row fresh-git "fresh runner, git (every plugin fetched + verified)" "$fresh" "$xf"
row fresh-repo "fresh runner, --cache-repo, trusting A's key (reads only)" "$fresh" "$xf --cache-repo $crepo --cache-trust $work/cache.pub"
# Trusting another key: A's trees and verdicts are ignored, so every run
# fetches from git and verifies again (and, reading only, writes nothing).
openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout -out "$work/key2.pub"
row fresh-repo-key2 "fresh runner, --cache-repo, another key" "$fresh" \
	"$xf --cache-repo $crepo --cache-trust $work/key2.pub"

# --- report ------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a/b; else print "-" }'; }
verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r + 0 <= g + 0) ? "met" : "MISSED" }'; }
printf '\n%s; bases: %s (%s) 1 platform, and an index of %s (one distinct layer each, same binary);\n' \
	"$(date -u +%F)" "$base_kind" "$base_size" "${plats[*]}"
printf '%s plugins: copies of %s under distinct module paths, git daemon; registry Distribution on loopback; %s CPU(s); buildah %s.\n' \
	"$PLUGINS" "${SOURCES[*]}" "$(nproc)" "$driver"
printf 'Median (min-max) of %s runs; peak RSS of one run.\n\n' "$RUNS"
printf '| %-16s | %-55s | %-22s | %-8s | %-48s | %s |\n' row what "wall s, median (range)" "peak RSS" "registry requests (one run)" "xtraefik timingsMs (one -o json run)"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------------ --------------------------------------------------------- ------------------------ ---------- -------------------------------------------------- ------
for n in "${order[@]}"; do
	printf '| %-16s | %-55s | %-22s | %-8s | %-48s | %s |\n' "$n" "${NOTE[$n]}" "${MED[$n]} (${MIN[$n]}-${MAX[$n]})" "${RSS[$n]} MiB" "${REQS[$n]}" "${TIMINGS[$n]:--}"
done
printf '\n| goal | figure | target | |\n|---|---|---|---|\n'
g() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }
r=$(ratio "${MED[x1-layout]}" "${MED[buildah-warm]}")
g "OCI layout, cached base / buildah bud warm" "$r" "<= 0.25x" "$(verdict "${r%x}" 0.25)"
r=$(ratio "${MED[x1-push]}" "${MED[crane-append]}")
g "push, cached verdicts / crane append" "$r" "<= 1.5x" "$(verdict "${r%x}" 1.5)"
r=$(ratio "${MED[x20x3-layout]}" "${MED[x20x1-layout]}")
g "$PLUGINS x 3 / $PLUGINS x 1 platforms (layout)" "$r" "<= 1.3x" "$(verdict "${r%x}" 1.3)"
r=$(ratio "${MED[x20x3-push]}" "${MED[x20x1-push]}")
g "$PLUGINS x 3 / $PLUGINS x 1 platforms (push)" "$r" "<= 1.3x" "$(verdict "${r%x}" 1.3)"
g "rebuild, unchanged lock, warm ($PLUGINS x 3, layout)" "${MED[x20x3-layout]} s" "<= 0.5 s" "$(verdict "${MED[x20x3-layout]}" 0.5)"
g "rebuild, unchanged lock, warm ($PLUGINS x 3, push)" "${MED[x20x3-push]} s" "<= 0.5 s" "$(verdict "${MED[x20x3-push]}" 0.5)"
g "fresh runner: --cache-repo same key / git" "$(ratio "${MED[fresh-repo]}" "${MED[fresh-git]}")" "report" "-"
g "fresh runner: --cache-repo other key / git" "$(ratio "${MED[fresh-repo-key2]}" "${MED[fresh-git]}")" "report" "-"
maxrss=0
for n in "${order[@]}"; do case $n in x* | fresh*) [ "${RSS[$n]}" -gt "$maxrss" ] && maxrss=${RSS[$n]} ;; esac; done
g "peak RSS, every xtraefik row" "$maxrss MiB" "<= 64 MB (61 MiB)" "$(verdict "$maxrss" 61)"
