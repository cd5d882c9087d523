// Command gensource writes source.zip, the worker source package provision
// embeds: go.mod, go.sum and every file of this module's packages the verify
// package builds from, on any GOOS, test files left out. A worker for a Yaegi
// xtraefik does not link is the verify package compiled again from it.
//
// It is an archive because //go:embed cannot name a parent directory: a
// package embedding go.mod and the verify tree directly would have to sit in
// the module's root directory. The archive is deterministic (sorted names,
// stored uncompressed, no times), so it changes exactly when its files do,
// and provision's TestEmbeddedSourceCurrent fails while it is stale.
//
//	go run ./internal/gensource -o source.zip
package main

import (
	"archive/zip"
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

const modulePath = "github.com/xtraefik/xtraefik"

// own is the archive's own name: provision embeds it, so the worker module's
// copy of provision gets it written back rather than archived inside itself.
const own = "verify/provision/source.zip"

func main() {
	out := flag.String("o", "source.zip", "the archive to write")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gensource:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	names, err := sourceNames(root)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the xtraefik module")
	}
	return filepath.Dir(gomod), nil
}

// sourceNames lists the archive's files, slash-separated and sorted: the
// module files, then each package verify depends on in this module (on linux
// and darwin, whose file sets differ) with all its non-test Go files and the
// files it embeds. Embed patterns are read rather than the embedded files the
// go command lists, which it leaves out while source.zip itself is missing.
func sourceNames(root string) ([]string, error) {
	set := map[string]bool{"go.mod": true, "go.sum": true}
	for _, goos := range []string{"linux", "darwin"} {
		cmd := exec.Command("go", "list", "-e", "-deps", "-f",
			`{{if not .Standard}}{{.ImportPath}}{{range .EmbedPatterns}} {{.}}{{end}}{{end}}`, modulePath+"/verify")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list -deps verify (GOOS=%s): %w", goos, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !strings.HasPrefix(f[0]+"/", modulePath+"/") {
				continue
			}
			dir := strings.TrimPrefix(strings.TrimPrefix(f[0], modulePath), "/")
			goFiles, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(dir), "*.go"))
			if err != nil {
				return nil, err
			}
			for _, g := range goFiles {
				if !strings.HasSuffix(g, "_test.go") {
					set[path.Join(dir, filepath.Base(g))] = true
				}
			}
			for _, pattern := range f[1:] {
				if err := addEmbedded(set, root, dir, pattern); err != nil {
					return nil, err
				}
			}
		}
	}
	delete(set, own)
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// addEmbedded adds the files one //go:embed pattern of the package in dir
// names: the matches, and the files under a matching directory.
func addEmbedded(set map[string]bool, root, dir, pattern string) error {
	matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(dir), filepath.FromSlash(strings.TrimPrefix(pattern, "all:"))))
	if err != nil {
		return err
	}
	for _, m := range matches {
		err := filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			set[filepath.ToSlash(rel)] = true
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
