// Package modtxt reads vendor/modules.txt, the list `go mod vendor` writes of
// the modules and packages it copied into vendor/. The module zip of a
// plugin keeps this file but drops the vendored files (source/modproxy
// restores them from it), and the SBOM lists the vendored modules from it.
package modtxt

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// MaxLine is the longest line accepted, in bytes: far more than any module or
// package path, so that a hostile file is refused by its first absurd line.
const MaxLine = 64 << 10

// Module is one "# path version [=> replacement]" block.
type Module struct {
	Path, Version string
	// Replace is the replacement: a module (Path and Version), a directory
	// (Path only, see Local), or zero.
	Replace module.Version
	// Packages are the module's packages copied into vendor/; none for a
	// module listed only as a requirement or a replacement.
	Packages []string
}

// Local reports whether m is replaced by a directory, which no proxy serves.
func (m Module) Local() bool { return m.Replace.Path != "" && m.Replace.Version == "" }

// Parse reads modules.txt in the format cmd/go writes (Go 1.26,
// cmd/go/internal/modload/vendor.go): module lines "# path version",
// "# path version => path version", "# path [version] => dir"; annotation
// lines "## explicit; go 1.22", which carry nothing files depend on; and
// package lines under their module. Modules come in file order, those
// without packages included. Errors name the line.
func Parse(data []byte) ([]Module, error) {
	var mods []Module
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if len(line) > MaxLine {
			return nil, fmt.Errorf("vendor/modules.txt:%d: line longer than %d bytes", n, MaxLine)
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "##"):
		case strings.HasPrefix(line, "# "):
			m, err := parseModule(line[2:])
			if err != nil {
				return nil, fmt.Errorf("vendor/modules.txt:%d: %w", n, err)
			}
			mods = append(mods, m)
		case strings.HasPrefix(line, "#"):
			return nil, fmt.Errorf("vendor/modules.txt:%d: unexpected line %q", n, line)
		case len(mods) == 0:
			return nil, fmt.Errorf("vendor/modules.txt:%d: package %q before any module line", n, line)
		default:
			mods[len(mods)-1].Packages = append(mods[len(mods)-1].Packages, line)
		}
	}
	return mods, nil
}

func parseModule(s string) (Module, error) {
	var m Module
	f := strings.Fields(s)
	old, repl, replaced := f, []string(nil), false
	if i := slices.Index(f, "=>"); i >= 0 {
		old, repl, replaced = f[:i], f[i+1:], true
	}
	switch len(old) {
	case 1:
		m.Path = old[0]
	case 2:
		m.Path, m.Version = old[0], old[1]
	default:
		return m, fmt.Errorf("malformed module line %q", "# "+s)
	}
	if err := module.CheckImportPath(m.Path); err != nil {
		return m, fmt.Errorf("malformed module line %q: %w", "# "+s, err)
	}
	switch {
	case !replaced && m.Version == "":
		return m, fmt.Errorf("malformed module line %q: no version", "# "+s)
	case !replaced:
	case len(repl) == 1 && modfile.IsDirectoryPath(repl[0]):
		m.Replace = module.Version{Path: repl[0]}
	case len(repl) == 2:
		m.Replace = module.Version{Path: repl[0], Version: repl[1]}
	default:
		return m, fmt.Errorf("malformed replacement %q", "# "+s)
	}
	return m, nil
}
