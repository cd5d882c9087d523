package verify

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/verify/interpreters"
)

// FromDir describes a plugin author's working copy for verification: its
// files (fileset.FromDir, .git left out), its module path read from go.mod,
// the last element of that path as alias, and its manifest when it reads
// (verification reports why when it does not).
func FromDir(dir string) (plugin.Plugin, error) {
	files, err := fileset.FromDir(dir)
	if err != nil {
		return plugin.Plugin{}, fmt.Errorf("read plugin directory: %w", err)
	}
	mod, err := modulePath(files)
	if err != nil {
		return plugin.Plugin{}, fmt.Errorf("%s: %w", dir, err)
	}
	p := plugin.Plugin{Alias: path.Base(mod), Module: mod, Files: files}
	p.Manifest, _ = manifest.Read(files)
	return p, nil
}

func modulePath(files fileset.Set) (string, error) {
	f, ok := files.Lookup("go.mod")
	if !ok || f.Kind == fileset.Symlink {
		return "", fmt.Errorf("no go.mod at the plugin root to read the module name from")
	}
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("open go.mod: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read go.mod: %w", err)
	}
	mod := modfile.ModulePath(data)
	if mod == "" {
		return "", fmt.Errorf("go.mod has no module line")
	}
	return mod, nil
}

// VerifyDir verifies the working copy at dir (see FromDir). A working copy
// has no base image to name its Traefik: without opts.TraefikVersion it is
// checked for the newest release xtraefik knows, and the results say so.
func VerifyDir(ctx context.Context, dir string, expectStatus int, opts Options) ([]Result, error) {
	p, err := FromDir(dir)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	p.ExpectStatus = expectStatus
	chosen := opts.TraefikVersion == "" && opts.Yaegi == ""
	if chosen {
		opts.TraefikVersion = interpreters.Newest()
	}
	p.UseUnsafe = plugin.GrantsUnsafe(opts.AllowUnsafe, p.Manifest, opts.TraefikVersion)
	rs, err := Verify(ctx, []plugin.Plugin{p}, opts)
	// Messages name files where the image holds them; the author knows
	// them where they are.
	names := strings.NewReplacer("plugins-local/src/"+p.Module+"/", filepath.Clean(dir)+string(filepath.Separator))
	for i := range rs {
		rs[i].Reason, rs[i].Detail = names.Replace(rs[i].Reason), names.Replace(rs[i].Detail)
		for j, n := range rs[i].Notes {
			rs[i].Notes[j] = names.Replace(n)
		}
		if chosen {
			rs[i].Notes = append(rs[i].Notes, "checked for Traefik "+opts.TraefikVersion+", the newest release xtraefik knows; name another with --traefik-version")
		}
	}
	return rs, err
}
