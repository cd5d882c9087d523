package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// TestDirectoryAndSubdirPlugins: a plugin from a directory beside the
// recipe (content-hashed, exclude patterns applied, a change after lock
// warned about and refused by --frozen) and one from a monorepo's
// subdirectory.
func TestDirectoryAndSubdirPlugins(t *testing.T) {
	w := newWorld(t)
	base := "docker://" + w.registry + "/library/traefik:v3.6"

	// The directory plugin: a working copy with a .git and files to exclude.
	dir := filepath.Join(w.dir, "plugins", "demo")
	os.MkdirAll(filepath.Dir(dir), 0o755)
	if out, err := exec.Command("cp", "-r", testenv.ModuleDir(t, demoModule, demoVersion), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", dir).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v %s", err, out)
	}
	testenv.NewRepo(t, dir) // a .git directory, as a working copy has
	os.MkdirAll(filepath.Join(dir, ".github", "workflows"), 0o755)
	os.WriteFile(filepath.Join(dir, ".github", "workflows", "ci.yml"), []byte("on: push\n"), 0o644)

	// The monorepo: the plugin lives under plugins/demo.
	mono := testenv.NewRepo(t, filepath.Join(w.gitRoot, "example.com", "mono"))
	src := testenv.ModuleDir(t, demoModule, demoVersion)
	for _, f := range []string{".traefik.yml", "demo.go", "go.mod", "readme.md"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), demoModule, "example.com/mono/plugins/demo")
		mono.WriteFile("plugins/demo/"+f, strings.ReplaceAll(text, "package plugindemo", "package demo"))
	}
	mono.WriteFile("README.md", "the monorepo\n")
	mono.Commit("mono")
	mono.Tag("v1")

	rp := w.writeRecipe("sources.yaml", "base: "+base+"\nplugins:\n"+
		"  local:\n    module: "+demoModule+"\n    path: ./plugins/demo\n    exclude: [\".github/**\", \"*.md\"]\n"+
		"  mono:\n    module: example.com/mono/plugins/demo\n    git: "+w.gitURL+"example.com/mono\n    ref: v1\n    subdir: plugins/demo\n")
	w.mustRun("lock", "-f", rp)
	out := w.mustRun("build", "-f", rp, "--frozen", "-o", "json", "--oci-layout", filepath.Join(w.dir, "layout"))
	var rep build.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.OK {
		t.Fatalf("build: %v\n%s", err, out)
	}
	lock, err := recipe.ReadLock(recipe.LockPath(rp))
	if err != nil {
		t.Fatal(err)
	}
	for _, pl := range lock.Plugins {
		switch pl.Alias {
		case "local":
			if pl.Path != "./plugins/demo" || pl.Commit != "" || len(pl.Exclude) != 2 {
				t.Errorf("local lock entry %+v", pl)
			}
		case "mono":
			if pl.Subdir != "plugins/demo" || pl.Commit == "" {
				t.Errorf("mono lock entry %+v", pl)
			}
		}
	}

	// What went into the image: no .git, no excluded files, the subdir's
	// files at the module root.
	unpacked, single := filepath.Join(w.dir, "bundle"), filepath.Join(w.dir, "single")
	tool(t, "skopeo", "copy", "--override-arch", "amd64", "oci:"+filepath.Join(w.dir, "layout")+":latest", "oci:"+single+":amd64")
	tool(t, "umoci", "unpack", "--rootless", "--image", single+":amd64", unpacked)
	unpacked = filepath.Join(unpacked, "rootfs")
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"plugins-local/src/" + demoModule + "/demo.go", true},
		{"plugins-local/src/" + demoModule + "/readme.md", false},
		{"plugins-local/src/" + demoModule + "/.git", false},
		{"plugins-local/src/" + demoModule + "/.github", false},
		{"plugins-local/src/example.com/mono/plugins/demo/.traefik.yml", true},
		{"plugins-local/src/example.com/mono/plugins/demo/README.md", false},
	} {
		_, err := os.Lstat(filepath.Join(unpacked, tt.path))
		if (err == nil) != tt.want {
			t.Errorf("%s in the image: %v, want %v", tt.path, err == nil, tt.want)
		}
	}

	// The directory changes after the lock: a warning, and --frozen refuses.
	os.WriteFile(filepath.Join(dir, "demo.go"), append(mustRead(t, filepath.Join(dir, "demo.go")), "\n// edited\n"...), 0o644)
	_, errOut, err := w.run("build", "-f", rp)
	if err != nil || !strings.Contains(errOut, "the directory changed since it was locked") {
		t.Errorf("changed directory: %v\n%s", err, errOut)
	}
	if _, _, err := w.run("build", "-f", rp, "--frozen"); err == nil || !strings.Contains(err.Error(), "--frozen") {
		t.Errorf("changed directory with --frozen: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
