#!/usr/bin/env bash
# Compare xtraefik with its peers on the same Traefik base and the same plugin:
#   buildah bud --timestamp 0  (Dockerfile: FROM base; COPY plugins-local /plugins-local), cold and warm
#   crane append               (a plugins-local tarball onto the base, pushed)
#   xtraefik build             (the CLI: git fetch from its cache, Yaegi verification, assemble, push / OCI layout)
#   xtraefik assemble          (the library path only, bench/assemble: resolve, assemble, push / OCI layout)
# Everything runs on loopback: a Debian docker-registry, a git daemon. The
# base holds the real Traefik binary (scripts/traefik-binary caches it) when
# available, else a 64 MiB stand-in. See bench/README.md.
set -euo pipefail

RUNS=${RUNS:-10}
COLD_RUNS=${COLD_RUNS:-3}
PLUGIN_MODULE=github.com/traefik/plugindemo
PLUGIN_VERSION=v0.2.2
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

start_registry

# --- the plugin --------------------------------------------------------------
log "plugin $PLUGIN_MODULE@$PLUGIN_VERSION from the Go module proxy"
moddir=$(go_module "$PLUGIN_MODULE@$PLUGIN_VERSION")
ctx=$work/ctx
plugin=$ctx/plugins-local/src/$PLUGIN_MODULE
mkdir -p "$plugin"
cp -R "$moddir/." "$plugin/"
chmod -R u+w,go-w "$ctx"
find "$ctx" -type d -exec chmod 0755 {} +
find "$ctx" -type f -exec chmod 0644 {} +
printf 'FROM %s/library/traefik:%s\nCOPY plugins-local /plugins-local\n' "$reg" "$TRAEFIK_VERSION" >"$ctx/Dockerfile"
# The same tree for crane append, as a reproducible tarball.
tar --sort=name --mtime=@$EPOCH --owner=0 --group=0 --numeric-owner --format=gnu \
	-C "$ctx" -cf "$work/plugins.tar" plugins-local

# --- the base ----------------------------------------------------------------
base=$reg/library/traefik:$TRAEFIK_VERSION
base_root
log "base image ($base_kind, $base_size) -> $base"
make_base "$base" "linux/$(go env GOARCH)"

# --- xtraefik ----------------------------------------------------------------
build_xtraefik
# A git repository of the plugin, served by git daemon, for the CLI.
gitroot=$work/git
git_repo "$gitroot/plugindemo" "$moddir" "$PLUGIN_VERSION"
start_gitd "$gitroot" plugindemo
mkdir -p "$work/recipe"
cat >"$work/recipe/recipe.yaml" <<EOF
base: $base
plugins:
  demo:
    module: $PLUGIN_MODULE
    git: git://127.0.0.1:$gport/plugindemo
    ref: $PLUGIN_VERSION
EOF
export SOURCE_DATE_EPOCH=$EPOCH
xt="$work/bin/xtraefik"
xt_cache=$work/xt-cache
"$xt" lock -f "$work/recipe/recipe.yaml" --cache-dir "$xt_cache" >/dev/null 2>&1 || die "xtraefik lock failed: $("$xt" lock -f "$work/recipe/recipe.yaml" --cache-dir "$xt_cache" 2>&1 | tail -3)"
asm="$work/bin/assemble -base $base -plugin-dir $plugin -module $PLUGIN_MODULE -epoch $EPOCH"

# --- buildah -----------------------------------------------------------------
driver=overlay
bah_base="buildah --root $work/buildah/root --runroot $work/buildah/run --storage-driver"
if ! $bah_base overlay info >/dev/null 2>&1; then driver=vfs; fi
bah="$bah_base $driver"
bud="$bah bud --quiet --timestamp 0 --tls-verify=false --pull=false -f $ctx/Dockerfile $ctx"
bud_cold="$bah bud --quiet --timestamp 0 --tls-verify=false -f $ctx/Dockerfile $ctx"
bah_reset="$bah rmi --all --force >/dev/null 2>&1 || true; rm -rf $work/buildah 2>/dev/null || true"

# --- measuring ---------------------------------------------------------------
declare -A MEAN SD RSS REPRO UPLOADS NOTE
order=()

# timeit NAME RUNS PREPARE CMD: mean and standard deviation of the wall time.
timeit() {
	local name=$1 runs=$2 prepare=$3 cmd=$4
	if command -v hyperfine >/dev/null; then
		local args=(--runs "$runs" --export-csv "$work/$name.csv" --style none)
		if [ -n "$prepare" ]; then args+=(--prepare "$prepare"); else args+=(--warmup 1); fi
		hyperfine "${args[@]}" "$cmd" >/dev/null 2>"$work/$name.err" || die "$name failed: $(tail -5 "$work/$name.err")"
		IFS=, read -r MEAN[$name] SD[$name] < <(awk -F, 'NR==2 {printf "%.3f,%.3f\n", $2, $3}' "$work/$name.csv")
	else
		local times=() i t
		[ -n "$prepare" ] || bash -c "$cmd" >/dev/null 2>&1
		for i in $(seq "$runs"); do
			[ -z "$prepare" ] || bash -c "$prepare" >/dev/null 2>&1
			t=$({ /usr/bin/time -f %e bash -c "$cmd" >/dev/null 2>/dev/null; } 2>&1 | tail -1)
			times+=("$t")
		done
		IFS=, read -r MEAN[$name] SD[$name] < <(printf '%s\n' "${times[@]}" |
			awk '{s+=$1; q+=$1*$1; n++} END {m=s/n; v=q/n-m*m; if (v<0) v=0; printf "%.3f,%.3f\n", m, sqrt(v)}')
	fi
}

# repro NAME DIGEST_CMD_1 DIGEST_CMD_2: whether two independent runs give one digest.
repro() {
	local a b
	a=$(bash -c "$2" 2>/dev/null | tail -1)
	b=$(bash -c "$3" 2>/dev/null | tail -1)
	if [ -n "$a" ] && [ "$a" = "$b" ]; then REPRO[$1]="yes ${a:7:12}"; else REPRO[$1]="NO (${a:7:12} / ${b:7:12})"; fi
}

bench() { order+=("$1"); NOTE[$1]=$2; }

log "buildah bud ($driver storage), cold: base pulled into empty storage"
bench buildah-cold "bud, empty storage (pulls the base)"
timeit buildah-cold "$COLD_RUNS" "$bah_reset" "$bud_cold"
peak_rss buildah-cold "$bah_reset" "$bud_cold"
log "buildah bud, warm: base in storage"
bench buildah-warm "bud, base in storage"
timeit buildah-warm "$RUNS" "" "$bud"
peak_rss buildah-warm "" "$bud"
# Blobs uploaded by buildah push, before any other buildah push: its blob
# info cache would otherwise mount the layer pushed earlier instead.
bash -c "$bah_reset"
$bah bud --quiet --timestamp 0 --tls-verify=false --iidfile "$work/iid" -f "$ctx/Dockerfile" "$ctx" >/dev/null 2>&1
UPLOADS[buildah-cold]="$(uploads_during $bah push --quiet --tls-verify=false "$(cat "$work/iid")" "docker://$reg/bench/buildah-up:latest") (push)"
UPLOADS[buildah-warm]=${UPLOADS[buildah-cold]}
# Reproducible: two builds from empty storage, pushed; their digests compared.
bah_digest() { # TAG
	bash -c "$bah_reset"
	$bah bud --quiet --timestamp 0 --tls-verify=false --iidfile "$work/iid" -f "$ctx/Dockerfile" "$ctx" >/dev/null 2>&1
	$bah push --quiet --tls-verify=false --digestfile "$work/bah.digest" "$(cat "$work/iid")" "docker://$reg/bench/buildah:$1" >/dev/null 2>&1
	cat "$work/bah.digest"
}
a=$(bah_digest r1); b=$(bah_digest r2)
if [ -n "$a" ] && [ "$a" = "$b" ]; then REPRO[buildah-cold]="yes ${a:7:12}"; else REPRO[buildah-cold]="NO (${a:7:12} / ${b:7:12})"; fi
REPRO[buildah-warm]=${REPRO[buildah-cold]}

log "crane append to the registry"
capp="$crane append -b $base -f $work/plugins.tar -t $reg/bench/crane:latest"
bench crane-append "append + push, base in the same registry"
timeit crane-append "$RUNS" "" "$capp"
peak_rss crane-append "" "$capp"
repro crane-append "$capp >/dev/null 2>&1; $crane digest $reg/bench/crane:latest" \
	"$crane append -b $base -f $work/plugins.tar -t $reg/bench/crane:again >/dev/null 2>&1; $crane digest $reg/bench/crane:again"
UPLOADS[crane-append]=$(uploads_during $crane append -b "$base" -f "$work/plugins.tar" -t "$reg/bench/crane-up:latest")

xbuild="$xt build -f $work/recipe/recipe.yaml --cache-dir $xt_cache"
log "xtraefik build --push (git cache warm)"
bench xtraefik-push "CLI: fetch (cached), verify, assemble, push"
timeit xtraefik-push "$RUNS" "" "$xbuild --push $reg/bench/xtraefik:latest"
peak_rss xtraefik-push "" "$xbuild --push $reg/bench/xtraefik:latest"
repro xtraefik-push "$xbuild --push $reg/bench/xtraefik:latest --digest-file $work/x1 >/dev/null 2>&1; cat $work/x1" \
	"$xt build -f $work/recipe/recipe.yaml --cache-dir $work/xt-cache2 --push $reg/bench/xtraefik:again --digest-file $work/x2 >/dev/null 2>&1; cat $work/x2"
UPLOADS[xtraefik-push]=$(uploads_during $xbuild --push "$reg/bench/xtraefik-up:latest")

log "xtraefik build --oci-layout"
bench xtraefik-layout "CLI: fetch (cached), verify, assemble, OCI layout"
timeit xtraefik-layout "$RUNS" "" "$xbuild --oci-layout $work/xt-layout --overwrite"
peak_rss xtraefik-layout "" "$xbuild --oci-layout $work/xt-layout --overwrite"
repro xtraefik-layout "$xbuild --oci-layout $work/xl1 --overwrite --digest-file $work/x3 >/dev/null 2>&1; cat $work/x3" \
	"$xbuild --oci-layout $work/xl2 --overwrite --digest-file $work/x4 >/dev/null 2>&1; cat $work/x4"

log "xtraefik assemble (library path) --push"
bench assemble-push "library: resolve, assemble, push"
timeit assemble-push "$RUNS" "" "$asm -push $reg/bench/assemble:latest"
peak_rss assemble-push "" "$asm -push $reg/bench/assemble:latest"
repro assemble-push "$asm -push $reg/bench/assemble:latest" "$asm -push $reg/bench/assemble:again"
UPLOADS[assemble-push]=$(uploads_during $asm -push "$reg/bench/assemble-up:latest")

log "xtraefik assemble (library path) --oci-layout"
bench assemble-layout "library: resolve, assemble, OCI layout"
timeit assemble-layout "$RUNS" "" "$asm -oci-layout $work/asm-layout"
peak_rss assemble-layout "" "$asm -oci-layout $work/asm-layout"
repro assemble-layout "$asm -oci-layout $work/al1" "$asm -oci-layout $work/al2"

# --- report ------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a/b; else print "-" }'; }
printf '\nBase: %s (%s), registry %s (Distribution, loopback); plugin %s@%s; %s CPU(s); buildah storage: %s\n' \
	"$base_kind" "$base_size" "$reg" "$PLUGIN_MODULE" "$PLUGIN_VERSION" "$(nproc)" "$driver"
printf 'Wall time: mean ± sd of %s runs (%s cold); peak RSS of one run; reproducible: two independent runs, same digest.\n\n' "$RUNS" "$COLD_RUNS"
printf '| %-16s | %-50s | %-15s | %-7s | %-8s | %-8s | %-20s | %-10s |\n' tool what "wall (s)" "vs bud" "vs crane" "peak RSS" "reproducible" "blobs up"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------------ ---------------------------------------------------- ----------------- --------- ---------- ---------- ---------------------- ------------
for n in "${order[@]}"; do
	vs_bud=$(ratio "${MEAN[$n]}" "${MEAN[buildah-warm]}")
	vs_crane=$(ratio "${MEAN[$n]}" "${MEAN[crane-append]}")
	printf '| %-16s | %-50s | %-15s | %-7s | %-8s | %-8s | %-20s | %-10s |\n' "$n" "${NOTE[$n]}" \
		"${MEAN[$n]} ± ${SD[$n]}" "$vs_bud" "$vs_crane" "${RSS[$n]} MiB" "${REPRO[$n]:--}" "${UPLOADS[$n]:--}"
done
printf '\n"vs bud": wall time over buildah bud warm; "vs crane": over crane append. "blobs up": blobs one push uploaded\n'
printf '(counted in the registry access log; the base is already in the registry, in another repository).\n'
