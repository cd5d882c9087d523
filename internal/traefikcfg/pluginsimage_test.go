package traefikcfg

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

// TestHelmPluginsImageValues: one localPath entry per plugin on the image
// volume, useUnsafe passed as the chart's setting, a WORKDIR in the mount
// paths; a reference not pinned by digest and a relative mount path are
// refused.
func TestHelmPluginsImageValues(t *testing.T) {
	ref := "registry.example.com/p@sha256:" + strings.Repeat("a", 64)
	ps := []plugin.Plugin{{Alias: "b", Module: "example.com/b", UseUnsafe: true}, {Alias: "a", Module: "example.com/a"}}
	data, err := HelmPluginsImageValues(ps, PluginsVolume{Reference: ref, MountPath: "/srv/plugins-local"})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Experimental struct {
			LocalPlugins map[string]map[string]any `yaml:"localPlugins"`
		} `yaml:"experimental"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b := v.Experimental.LocalPlugins["b"]
	if len(v.Experimental.LocalPlugins) != 2 || b["mountPath"] != "/srv/plugins-local/src/example.com/b" || b["subPath"] != "src/example.com/b" ||
		b["settings"].(map[string]any)["useUnsafe"] != true || v.Experimental.LocalPlugins["a"]["settings"] != nil {
		t.Errorf("localPlugins %v", v.Experimental.LocalPlugins)
	}
	for _, bad := range []PluginsVolume{{Reference: "registry.example.com/p:v1", MountPath: "/plugins-local"}, {Reference: ref, MountPath: "plugins-local"}} {
		if _, err := HelmPluginsImageValues(ps, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
