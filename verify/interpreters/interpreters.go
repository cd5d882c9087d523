// Package interpreters knows which interpreters each Traefik release embeds
// (Yaegi for Yaegi plugins, wazero and http-wasm for wasm plugins) and what
// each Yaegi version offers plugins to import. The table is read from every
// release's go.mod and held to it by a test against the module proxy; a
// Traefik binary's own Go build info, when there is one to read, wins over it.
package interpreters

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// Module paths of the interpreters, as Traefik's go.mod requires them.
const (
	YaegiModule    = "github.com/traefik/yaegi"
	WazeroModule   = "github.com/tetratelabs/wazero"
	HTTPWasmModule = "github.com/http-wasm/http-wasm-host-go"
)

// Interpreter is what one Traefik release interprets plugins with.
type Interpreter struct {
	// Yaegi is the version of YaegiModule ("v0.16.1"), or, when Traefik
	// replaces YaegiModule by another module (a fork), that module as
	// "path@version" ("path" for a directory): see Replaced.
	Yaegi string
	// Wazero is the version of WazeroModule ("path@version" for a fork, as
	// Yaegi); "" where Traefik has no wasm plugins (v2).
	Wazero string
	// HTTPWasm is the http-wasm host as "module@version": Traefik v3.1.0–v3.1.4
	// replace HTTPWasmModule with a fork. "" where Traefik has no wasm plugins.
	HTTPWasm string
}

// Replaced reports whether v, a Yaegi or wazero version as Interpreter
// holds it, names a replacement by another module ("path@version"): a fork
// whose code xtraefik does not have, so that interpreter is not exactly
// known whatever its version says.
func Replaced(v string) bool { return strings.ContainsAny(v, "@/") }

// named is how Interpreter names the module that stands for module: its
// version when it is module itself, path@version when it is another.
func named(module, path, version string) string {
	switch {
	case path == module:
		return version
	case version == "":
		return path
	}
	return path + "@" + version
}

// YaegiName names the Yaegi interpreter as reports do ("yaegi v0.15.1").
func (i Interpreter) YaegiName() string { return "yaegi " + i.Yaegi }

// release is a range of Traefik releases (from and to included) that embed
// the same interpreters.
type release struct {
	from, to string
	in       Interpreter
}

const (
	httpWasm060  = HTTPWasmModule + "@v0.6.0"
	httpWasmFork = "github.com/traefik/http-wasm-host-go@v0.0.0-20240618100324-3c53dcaa1a70"
	httpWasm070  = HTTPWasmModule + "@v0.7.0"
)

// releases is the table, from each release's go.mod. A release the module
// proxy does not serve (v2.9.7, v3.1.5) sits in a gap where its neighbours
// disagree: no guess is made for it. Traefik v2.9.0–v2.9.6 embed Yaegi
// v0.14.x, whose go.mod the checksum database does not vouch for here and
// which xtraefik cannot interpret with: they are left out too.
func releases() []release {
	return []release{
		{"v2.9.8", "v2.9.10", Interpreter{Yaegi: "v0.15.0"}},
		{"v2.10.0", "v2.10.7", Interpreter{Yaegi: "v0.15.1"}},
		// v2.11.1 moved to the Yaegi of Traefik v3.
		{"v2.11.0", "v2.11.0", Interpreter{Yaegi: "v0.15.1"}},
		{"v2.11.1", "v2.11.36", Interpreter{Yaegi: "v0.16.1"}},
		{"v3.0.0", "v3.0.4", Interpreter{Yaegi: "v0.16.1", Wazero: "v1.5.0", HTTPWasm: httpWasm060}},
		{"v3.1.0", "v3.1.4", Interpreter{Yaegi: "v0.16.1", Wazero: "v1.7.2", HTTPWasm: httpWasmFork}},
		{"v3.1.6", "v3.7.13", Interpreter{Yaegi: "v0.16.1", Wazero: "v1.8.0", HTTPWasm: httpWasm070}},
	}
}

// ForTraefik returns the interpreters Traefik version v ("v2.11.0") embeds;
// false when the table does not know v (a newer or unserved release, a
// pre-release, or a version without its patch number).
func ForTraefik(v string) (Interpreter, bool) {
	if !semver.IsValid(v) || semver.Canonical(v) != v || semver.Prerelease(v) != "" {
		return Interpreter{}, false
	}
	for _, r := range releases() {
		if semver.Compare(v, r.from) >= 0 && semver.Compare(v, r.to) <= 0 {
			return r.in, true
		}
	}
	return Interpreter{}, false
}

// Newest is the newest Traefik release the table knows.
func Newest() string {
	r := releases()
	return r[len(r)-1].to
}

// FromBinary reads the interpreters a Traefik binary links from its Go build
// info, which names the exact modules (replacements applied). ok is false for
// a Go binary that links no Yaegi, which is no Traefik the table could help
// with either.
func FromBinary(r io.ReaderAt) (in Interpreter, ok bool, err error) {
	bi, err := buildinfo.Read(r)
	if err != nil {
		return Interpreter{}, false, fmt.Errorf("read Go build info of the Traefik binary: %w", err)
	}
	in, ok = FromBuildInfo(bi)
	return in, ok, nil
}

// FromBuildInfo reads the interpreters a binary's Go build info names
// (replacements applied: one by another module path is named
// "path@version", see Replaced); ok is false when it links no Yaegi.
func FromBuildInfo(bi *debug.BuildInfo) (in Interpreter, ok bool) {
	for _, d := range bi.Deps {
		path, version := d.Path, d.Version
		if d.Replace != nil {
			path, version = d.Replace.Path, d.Replace.Version
		}
		switch d.Path {
		case YaegiModule:
			in.Yaegi = named(YaegiModule, path, version)
		case WazeroModule:
			in.Wazero = named(WazeroModule, path, version)
		case HTTPWasmModule:
			in.HTTPWasm = path + "@" + version
		}
	}
	return in, in.Yaegi != ""
}

// FromGoMod reads the interpreters a Traefik release's go.mod requires,
// its replace directives applied (a version-specific one first, as the go
// command does; one by another module path is named "path@version", see
// Replaced). ok is false when it requires no Yaegi. A replacement by
// a local directory names no version: that is an error.
func FromGoMod(file string, data []byte) (in Interpreter, ok bool, err error) {
	f, err := modfile.Parse(file, data, nil)
	if err != nil {
		return Interpreter{}, false, err
	}
	effective := func(p string) (string, string, error) {
		version := ""
		for _, r := range f.Require {
			if r.Mod.Path == p {
				version = r.Mod.Version
			}
		}
		if version == "" {
			return "", "", nil
		}
		var any, exact *modfile.Replace
		for _, r := range f.Replace {
			switch {
			case r.Old.Path != p:
			case r.Old.Version == version:
				exact = r
			case r.Old.Version == "":
				any = r
			}
		}
		if exact == nil {
			exact = any
		}
		if exact == nil {
			return p, version, nil
		}
		if exact.New.Version == "" {
			return "", "", fmt.Errorf("%s: %s is replaced by the directory %s, which names no version", file, p, exact.New.Path)
		}
		return exact.New.Path, exact.New.Version, nil
	}
	p, v, err := effective(YaegiModule)
	if err != nil {
		return Interpreter{}, false, err
	}
	if v != "" {
		in.Yaegi = named(YaegiModule, p, v)
	}
	if p, v, err = effective(WazeroModule); err != nil {
		return Interpreter{}, false, err
	}
	if v != "" {
		in.Wazero = named(WazeroModule, p, v)
	}
	p, v, err = effective(HTTPWasmModule)
	if err != nil {
		return Interpreter{}, false, err
	}
	if p != "" {
		in.HTTPWasm = p + "@" + v
	}
	return in, in.Yaegi != "", nil
}
