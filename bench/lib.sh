# shellcheck shell=bash
# shellcheck disable=SC2034 # base_kind, base_size, reg, gport, crane: for the sourcing script
# Shared set-up of the benchmark scripts (bench/peers.sh, bench/cache.sh,
# bench/binary.sh, …), sourced, not run: the tools, a loopback Distribution
# registry, a git daemon, Traefik base images holding the real Traefik
# binary, xtraefik itself; and the measurements their rows take.
# Sourcing sets repo, work (a temporary directory removed on exit), crane.

TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.6.12}
EPOCH=1704164645 # 2024-01-02T03:04:05Z, the base's and the layers' time

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/xtraefik-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	# buildah's overlay storage may hold mounts.
	if [ -d "$work/buildah" ]; then
		buildah --root "$work/buildah/root" --runroot "$work/buildah/run" rm --all >/dev/null 2>&1 || true
		umount -R "$work/buildah" 2>/dev/null || true
	fi
	rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
log() { printf '== %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------
apt_install() {
	[ "$(id -u)" = 0 ] || return 1
	command -v apt-get >/dev/null || return 1
	log "installing $* with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; }
}
# BENCH_NO_BUILDAH=1: a script that runs no buildah row (bench/binary.sh).
[ "${BENCH_NO_BUILDAH:-0}" = 1 ] || command -v buildah >/dev/null || apt_install buildah || die "buildah is missing (apt-get install buildah)"
command -v hyperfine >/dev/null || apt_install hyperfine || log "hyperfine unavailable: timing with /usr/bin/time loops"
[ -x /usr/bin/time ] || apt_install time || die "/usr/bin/time (GNU time) is missing"
command -v docker-registry >/dev/null || apt_install docker-registry || die "docker-registry is missing"
command -v git >/dev/null || die "git is missing"
crane=$(command -v crane || echo "$(go env GOPATH)/bin/crane")
if [ ! -x "$crane" ]; then
	log "installing crane"
	(cd "$repo" && go install github.com/google/go-containerregistry/cmd/crane)
	crane="$(go env GOPATH)/bin/crane"
fi

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
		(for p in $(shuf -i 20000-60000 -n 50); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; break; }; done)
}

# start_registry: a Debian docker-registry (Distribution 2.8) on a free
# loopback port; sets reg (host:port).
start_registry() {
	local port
	port=$(free_port)
	reg=127.0.0.1:$port
	mkdir -p "$work/registry"
	cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/registry/storage
  delete:
    enabled: true
http:
  addr: $reg
  secret: bench
EOF
	docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
	curl -fsS "http://$reg/v2/" >/dev/null || die "registry did not start: $(tail -5 "$work/registry/log")"
}

# uploads_during CMD...: runs CMD and prints how many blobs it uploaded (PUTs
# that complete an upload, from the registry's access log).
uploads_during() {
	local before after
	before=$(grep -c 'PUT /v2/[^ ]*/blobs/uploads/' "$work/registry/log" || true)
	"$@" >/dev/null 2>&1
	sleep 0.2
	after=$(grep -c 'PUT /v2/[^ ]*/blobs/uploads/' "$work/registry/log" || true)
	echo $((after - before))
}

# base_root: the base's file tree in $work/baseroot (the real Traefik binary
# from scripts/traefik-binary when cached, else a 64 MiB stand-in); sets
# base_kind and base_size.
base_root() {
	local traefik_bin=${XTRAEFIK_TRAEFIK_BINARY:-${XDG_CACHE_HOME:-$HOME/.cache}/xtraefik/traefik/$TRAEFIK_VERSION/traefik}
	local root=$work/baseroot
	[ -d "$root" ] && return 0
	mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
	chmod 1777 "$root/tmp"
	if [ -x "$traefik_bin" ]; then
		cp "$traefik_bin" "$root/usr/local/bin/traefik"
		base_kind="real Traefik $TRAEFIK_VERSION binary"
	else
		log "no Traefik binary at $traefik_bin (scripts/traefik-binary $TRAEFIK_VERSION builds it): using a 64 MiB stand-in"
		head -c $((64 << 20)) /dev/urandom >"$root/usr/local/bin/traefik"
		chmod 0755 "$root/usr/local/bin/traefik"
		base_kind="64 MiB stand-in binary"
	fi
	[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
	base_size=$(du -sh "$root" | cut -f1)
}

# make_base REF PLATFORM: a one-layer base image for PLATFORM (os/arch[/variant]).
# With MARK=1 the layer also holds /etc/xtraefik-bench-platform naming the
# platform, so that the platforms of an index have distinct layers as a real
# multi-platform base does (the binary is the host's on every platform).
make_base() {
	local ref=$1 platform=$2 root=$work/baseroot
	base_root
	if [ "${MARK:-0}" = 1 ]; then
		echo "$platform" >"$root/etc/xtraefik-bench-platform"
	else
		rm -f "$root/etc/xtraefik-bench-platform"
	fi
	tar --sort=name --mtime=@$EPOCH --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/base.tar" .
	"$crane" append --oci-empty-base -f "$work/base.tar" -t "$ref" >/dev/null 2>&1 || die "crane append (base) failed"
	"$crane" mutate "$ref" --set-platform "$platform" --entrypoint traefik \
		--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--exposed-ports 80/tcp --label org.opencontainers.image.version="$TRAEFIK_VERSION" -t "$ref" >/dev/null 2>&1 ||
		die "crane mutate (base) failed"
	rm -f "$work/base.tar" "$root/etc/xtraefik-bench-platform"
}

# make_index REF PLATFORM...: a multi-platform base (an OCI index), one
# distinct layer per platform (see make_base).
make_index() {
	local ref=$1 p tag args=()
	shift
	for p in "$@"; do
		tag="${ref%:*}:plat-${p//\//-}"
		MARK=1 make_base "$tag" "$p"
		args+=(-m "$tag")
	done
	"$crane" index append "${args[@]}" -t "$ref" >/dev/null 2>&1 || die "crane index append (base) failed"
}

# build_xtraefik: $work/bin/xtraefik and $work/bin/assemble from this tree.
# The binaries are copied out of the linker's output, as an installed binary
# is (go install, a release archive): the file the linker writes sits in the
# page cache in huge folios (FileHugePages in /proc/meminfo), which a process
# mapping it counts whole in its RSS: a fresh runner measured 59.8-60.1 MB
# run from the linker's file, 51.6-51.8 MB from a copy of it.
build_xtraefik() {
	log "building xtraefik and bench/assemble"
	mkdir -p "$work/bin" "$work/linked"
	(cd "$repo" && go build -o "$work/linked/xtraefik" ./cmd/xtraefik && go build -o "$work/linked/assemble" ./bench/assemble) ||
		die "go build failed"
	cp "$work/linked/xtraefik" "$work/linked/assemble" "$work/bin/" && rm -rf "$work/linked"
}

# go_module MODULE@VERSION: prints the module's directory in the module cache
# (downloaded from the Go module proxy if needed).
go_module() {
	local dir
	dir=$(cd "$work" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$1" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$dir" ] || die "go mod download $1 failed"
	echo "$dir"
}

# git_repo DIR SRC TAG: a git repository at DIR holding a copy of SRC, one
# commit (fixed dates) tagged TAG.
git_repo() {
	local dir=$1 src=$2 tag=$3
	git init -q "$dir"
	cp -R "$src/." "$dir/"
	chmod -R u+w "$dir"
	(
		cd "$dir" || exit 1
		export GIT_AUTHOR_DATE=@$EPOCH GIT_COMMITTER_DATE=@$EPOCH
		git -c user.name=bench -c user.email=bench@example.invalid add -A
		git -c user.name=bench -c user.email=bench@example.invalid commit -qm "$tag"
		git -c user.name=bench -c user.email=bench@example.invalid tag -a -m "$tag" "$tag"
	)
}

# start_gitd ROOT NAME: git daemon serving the repositories under ROOT; waits
# for ROOT/NAME to answer; sets gport.
start_gitd() {
	gport=$(free_port)
	git daemon --reuseaddr --export-all --base-path="$1" --listen=127.0.0.1 --port="$gport" "$1" >"$work/gitd.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do git ls-remote "git://127.0.0.1:$gport/$2" >/dev/null 2>&1 && break; sleep 0.1; done
	git ls-remote "git://127.0.0.1:$gport/$2" >/dev/null 2>&1 || die "git daemon did not start: $(tail -5 "$work/gitd.log")"
}

# requests_during CMD: runs CMD (a shell command) and prints how many requests
# the registry served meanwhile (its access log), by kind.
requests_during() {
	local before
	before=$(wc -l <"$work/registry/log")
	bash -c "$1" >/dev/null 2>&1
	sleep 0.2
	tail -n +"$((before + 1))" "$work/registry/log" | { grep -oE '"(HEAD|GET|PUT|POST|PATCH|DELETE) /v2/[^ ]*' || true; } |
		awk '{m=substr($1,2); if ($2 == "/v2/") m="ping"; n[m]++; t++}
		END {printf "%d: %d ping, %d HEAD, %d GET, %d PUT, %d POST/PATCH\n", t, n["ping"], n["HEAD"], n["GET"], n["PUT"], n["POST"]+n["PATCH"]}'
}

# --- measuring (the sourcing script declares order and MED MIN MAX RSS NOTE TIMINGS)

# measure NAME NOTE PREPARE CMD: a row of the sourcing script's table (its
# order, NOTE, and, measured, MED, MIN, MAX and RSS).
measure() {
	local name=$1 prepare=$3 cmd=$4
	order+=("$name")
	NOTE["$name"]=$2
	log "$name: $cmd"
	wall_times "$name" "$prepare" "$cmd"
	peak_rss "$name" "$prepare" "$cmd"
}

# wall_times NAME PREPARE CMD: the median, fastest and slowest wall time of
# RUNS runs of CMD (a shell command) into MED, MIN and MAX; PREPARE runs
# before each, or, without one, CMD runs once first to warm what it warms.
wall_times() {
	local name=$1 prepare=$2 cmd=$3 times=() i
	if [ -z "$prepare" ]; then
		bash -c "$cmd" >/dev/null 2>"$work/$name.err" || die "$name failed: $(tail -3 "$work/$name.err")"
	fi
	if command -v hyperfine >/dev/null; then
		local args=(--runs "$RUNS" --export-json "$work/$name.json" --style none)
		[ -z "$prepare" ] || args+=(--prepare "$prepare")
		hyperfine "${args[@]}" "$cmd" >/dev/null 2>"$work/$name.err" || die "$name failed: $(tail -5 "$work/$name.err")"
		IFS=, read -r "MED[$name]" "MIN[$name]" "MAX[$name]" < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.3f,%.3f,%.3f" % (r["median"], r["min"], r["max"]))' "$work/$name.json")
		return
	fi
	for i in $(seq "$RUNS"); do
		[ -z "$prepare" ] || bash -c "$prepare" >/dev/null 2>&1 || die "$name: prepare failed"
		/usr/bin/time -o "$work/$name.t" -f %e bash -c "$cmd" >/dev/null 2>&1 || die "$name failed (run $i): $cmd"
		times+=("$(tail -1 "$work/$name.t")")
	done
	IFS=, read -r "MED[$name]" "MIN[$name]" "MAX[$name]" < <(printf '%s\n' "${times[@]}" | sort -n |
		awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.3f,%.3f,%.3f\n", m, a[1], a[NR]}')
}

# peak_rss NAME PREPARE CMD: the peak RSS in MiB of one run of CMD (children
# included) into RSS.
peak_rss() {
	local name=$1 prepare=$2 cmd=$3
	[ -z "$prepare" ] || bash -c "$prepare" >/dev/null 2>&1
	/usr/bin/time -v -o "$work/$name.time" bash -c "$cmd" >/dev/null 2>&1 || die "$name failed (peak RSS run): $cmd"
	RSS["$name"]=$(awk -F: '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/$name.time")
}

# xtraefik_timings NAME PREPARE CMD: the stage timings and cached verdicts
# of one run of CMD, an xtraefik command, with -o json into TIMINGS.
xtraefik_timings() {
	local name=$1 prepare=$2 cmd=$3
	[ -z "$prepare" ] || bash -c "$prepare" >/dev/null 2>&1
	bash -c "$cmd -o json" >"$work/$name.report" 2>/dev/null || true
	TIMINGS["$name"]=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
v = r.get("verify") or []
t = r.get("timingsMs") or {}
print(" ".join("%s=%.0f" % kv for kv in t.items()) + "; verdicts cached %d/%d" % (sum(1 for x in v if x.get("cached")), len(v)))' "$work/$name.report" 2>/dev/null || echo "-")
}
