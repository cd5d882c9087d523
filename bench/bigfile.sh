#!/usr/bin/env bash
# Memory of a build with a big plugin file and with --sbom-dir:
#   small     xtraefik build --oci-layout, a directory plugin (plugindemo)
#   big       the same plugin plus a 200 MB random data file
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

TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.6.12}
PLUGIN_MODULE=github.com/traefik/plugindemo
PLUGIN_VERSION=v0.2.2
BIG_MB=${BIG_MB:-200}
EPOCH=1704164645

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/xtraefik-bigfile.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bigfile.sh: %s\n' "$*" >&2; exit 1; }

apt_install() {
	[ "$(id -u)" = 0 ] || return 1
	command -v apt-get >/dev/null || return 1
	log "installing $* with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; }
}
[ -x /usr/bin/time ] || apt_install time || die "/usr/bin/time (GNU time) is missing"
command -v docker-registry >/dev/null || apt_install docker-registry || die "docker-registry is missing"
crane=$(command -v crane || echo "$(go env GOPATH)/bin/crane")
if [ ! -x "$crane" ]; then
	log "installing crane"
	(cd "$repo" && go install github.com/google/go-containerregistry/cmd/crane)
	crane="$(go env GOPATH)/bin/crane"
fi
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- registry ----------------------------------------------------------------
port=$(free_port)
reg=127.0.0.1:$port
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry/storage
http:
  addr: $reg
  secret: bench
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$reg/v2/" >/dev/null || die "registry did not start: $(tail -5 "$work/registry/log")"

# --- the base ----------------------------------------------------------------
traefik_bin=${XTRAEFIK_TRAEFIK_BINARY:-${XDG_CACHE_HOME:-$HOME/.cache}/xtraefik/traefik/$TRAEFIK_VERSION/traefik}
root=$work/baseroot
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"
if [ -x "$traefik_bin" ]; then
	cp "$traefik_bin" "$root/usr/local/bin/traefik"
	base_kind="real Traefik $TRAEFIK_VERSION binary"
else
	head -c $((64 << 20)) /dev/urandom >"$root/usr/local/bin/traefik"
	chmod 0755 "$root/usr/local/bin/traefik"
	base_kind="64 MiB stand-in binary"
fi
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
tar --sort=name --mtime=@$EPOCH --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/base.tar" .
rm -rf "$root"
base=$reg/library/traefik:$TRAEFIK_VERSION
log "base image ($base_kind) -> $base"
"$crane" append --oci-empty-base -f "$work/base.tar" -t "$base" >/dev/null 2>&1 || die "crane append (base) failed"
"$crane" mutate "$base" --set-platform "linux/$(go env GOARCH)" --entrypoint traefik \
	--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--label org.opencontainers.image.version="$TRAEFIK_VERSION" -t "$base" >/dev/null 2>&1 ||
	die "crane mutate (base) failed"
rm -f "$work/base.tar"

# --- the plugins -------------------------------------------------------------
moddir=$(cd "$work" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$PLUGIN_MODULE@$PLUGIN_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$moddir" ] || die "go mod download $PLUGIN_MODULE@$PLUGIN_VERSION failed"
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

# The big plugin as a git repository too.
git init -q "$work/git-big"
cp -R "$work/plugin-big/." "$work/git-big/"
(
	cd "$work/git-big"
	export GIT_AUTHOR_DATE=@$EPOCH GIT_COMMITTER_DATE=@$EPOCH
	git -c user.name=bench -c user.email=bench@example.invalid add -A
	git -c user.name=bench -c user.email=bench@example.invalid commit -qm "plugindemo $PLUGIN_VERSION and data"
	git -c user.name=bench -c user.email=bench@example.invalid tag -a -m "$PLUGIN_VERSION" "$PLUGIN_VERSION"
)
# Served by git daemon: a file:// URL would run go-git's own upload-pack in
# the xtraefik process, and measure that.
gport=$(free_port)
git daemon --reuseaddr --export-all --base-path="$work" --listen=127.0.0.1 --port="$gport" "$work/git-big" >"$work/gitd.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do git ls-remote "git://127.0.0.1:$gport/git-big" >/dev/null 2>&1 && break; sleep 0.1; done
mkdir -p "$work/recipe-git-big"
cat >"$work/recipe-git-big/recipe.yaml" <<EOF
base: $base
plugins:
  demo:
    module: $PLUGIN_MODULE
    git: git://127.0.0.1:$gport/git-big
    ref: $PLUGIN_VERSION
EOF

log "building xtraefik"
(cd "$repo" && go build -o "$work/bin/xtraefik" ./cmd/xtraefik)
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
order=(small big git-cold git-big big-verify sbom)
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
measure git-cold git-big
measure git-big git-big
measure big-verify big --no-verdict-cache
measure sbom small --sbom-dir "$work/sbom"
[ -s "$work/sbom/sbom.spdx.json" ] || die "no SBOM written"

printf '\nBase: %s; plugin %s@%s as a directory; big = the same plus a %s MB random file; %s CPU(s).\n' \
	"$base_kind" "$PLUGIN_MODULE" "$PLUGIN_VERSION" "$BIG_MB" "$(nproc)"
printf 'One run each after a warm-up build: xtraefik build --oci-layout (verdict cache warm but for big-verify; git cache cold for git-cold).\n\n'
printf '| %-10s | %-10s | %-9s |\n' run "peak RSS" "wall"
printf '|%s|%s|%s|\n' ------------ ------------ -----------
for n in "${order[@]}"; do
	printf '| %-10s | %-10s | %-9s |\n' "$n" "${RSS[$n]} MiB" "${WALL[$n]}"
done
