#!/usr/bin/env bash
# What the plugins image (build --plugins-image) adds to a push: bench/assemble
# pushing the full image, against the same push plus the plugins image (into
# another repository, side by side, as the CLI does), each run into fresh
# repositories. Two targets:
# another registry than the base's (the base layers are uploaded: a base from
# docker.io pushed to your registry) and the base's own registry (they are
# mounted: only the plugin layer, configs and manifests move). The base has
# three platforms (the real Traefik binary when scripts/traefik-binary has
# cached it, else a 64 MiB stand-in); the plugin is plugindemo v0.2.2 from the
# Go module proxy. The two variants alternate, so that drift hits both.
#
#   RUNS=10 bash bench/pluginsimage.sh
#
# Needs Go, docker-registry, curl and python3; crane is installed from the
# module's go-containerregistry if missing. Nothing is installed with apt-get.
set -euo pipefail
RUNS=${RUNS:-10}
TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.6.12}
EPOCH=1704164645

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/xtraefik-bench-plugins.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
log() { printf '== %s\n' "$*" >&2; }
die() {
	printf 'pluginsimage.sh: %s\n' "$*" >&2
	exit 1
}

command -v docker-registry >/dev/null || die "docker-registry is missing (apt-get install docker-registry)"
crane=$(command -v crane || true)
if [ -z "$crane" ]; then
	(cd "$repo" && go install github.com/google/go-containerregistry/cmd/crane)
	crane="$(go env GOPATH)/bin/crane"
fi

# start_registry NAME: a Distribution registry on a free loopback port; sets
# addr to its host:port.
start_registry() {
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	addr=127.0.0.1:$port
	mkdir -p "$work/$1"
	printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n  secret: bench\n' \
		"$work/$1/storage" "$addr" >"$work/$1/config.yml"
	docker-registry serve "$work/$1/config.yml" >"$work/$1/log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
	curl -fsS "http://$addr/v2/" >/dev/null || die "registry $1 did not start"
}
start_registry registry
reg=$addr
start_registry other
other=$addr

# The base: one layer per platform (the binary, and a file naming the
# platform so that layers differ as a real multi-platform base's do).
traefik_bin=${XTRAEFIK_TRAEFIK_BINARY:-${XDG_CACHE_HOME:-$HOME/.cache}/xtraefik/traefik/$TRAEFIK_VERSION/traefik}
root=$work/baseroot
mkdir -p "$root/usr/local/bin" "$root/etc"
if [ -x "$traefik_bin" ]; then
	cp "$traefik_bin" "$root/usr/local/bin/traefik"
	base_kind="real Traefik $TRAEFIK_VERSION binary"
else
	head -c $((64 << 20)) /dev/urandom >"$root/usr/local/bin/traefik"
	base_kind="64 MiB stand-in binary"
fi
args=()
for p in linux/amd64 linux/arm64 linux/arm/v7; do
	echo "$p" >"$root/etc/xtraefik-bench-platform"
	tar --sort=name --mtime=@$EPOCH --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/base.tar" .
	tag="$reg/library/traefik:plat-${p//\//-}"
	"$crane" append --oci-empty-base -f "$work/base.tar" -t "$tag" >/dev/null 2>&1 || die "crane append failed"
	"$crane" mutate "$tag" --set-platform "$p" --entrypoint traefik -t "$tag" >/dev/null 2>&1 || die "crane mutate failed"
	args+=(-m "$tag")
done
"$crane" index append "${args[@]}" -t "$reg/library/traefik:$TRAEFIK_VERSION" >/dev/null 2>&1 || die "crane index append failed"
base=$reg/library/traefik:$TRAEFIK_VERSION

log "building bench/assemble"
(cd "$repo" && go build -o "$work/assemble" ./bench/assemble) || die "go build failed"
plugin=$(cd "$work" && GOWORK=off GOFLAGS=-mod=mod go mod download -json github.com/traefik/plugindemo@v0.2.2 |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$plugin" ] || die "plugindemo v0.2.2 not downloaded"

now() { date +%s%N; }
stats() { printf '%s\n' "$@" | awk '{s+=$1; q+=$1*$1; n++} END {m=s/n; v=q/n-m*m; if (v<0) v=0; printf "%.0f %.0f", m, sqrt(v)}'; }
assemble() {
	"$work/assemble" -base "$base" -plugin-dir "$plugin" -module github.com/traefik/plugindemo -epoch $EPOCH "$@" >/dev/null
}

# row TARGET WHAT: RUNS pushes of each variant into TARGET; one table row.
row() {
	local target=$1 t0 t1 t2 fm fs bm bs full=() both=()
	for i in $(seq "$RUNS"); do
		t0=$(now)
		assemble -push "$target/full$i/traefik:v1"
		t1=$(now)
		assemble -push "$target/both$i/traefik:v1" -plugins-image "$target/both$i/traefik-plugins:v1"
		t2=$(now)
		full+=($(((t1 - t0) / 1000000)))
		both+=($(((t2 - t1) / 1000000)))
	done
	read -r fm fs <<<"$(stats "${full[@]}")"
	read -r bm bs <<<"$(stats "${both[@]}")"
	awk -v f="$fm" -v fs="$fs" -v b="$bm" -v bs="$bs" -v what="$2" \
		'BEGIN {printf "| %s | %d ± %d | %d ± %d | %+.1f%% (%+d ms) |\n", what, f, fs, b, bs, (b-f)*100/f, b-f}'
}

echo "base: 3 platforms, $base_kind; plugin: plugindemo v0.2.2; $RUNS runs per cell, a fresh repository each"
echo "| push to | full image (ms) | full + plugins image (ms) | plugins image adds |"
echo "| --- | --- | --- | --- |"
row "$other" "another registry (base layers uploaded)"
row "$reg" "the base's registry (base layers mounted)"
