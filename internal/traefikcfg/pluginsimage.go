package traefikcfg

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

// PluginsVolumeName names the plugins image's volume in the Helm values and
// the Kubernetes examples.
const PluginsVolumeName = "xtraefik-plugins"

// PluginsVolume is a plugins image as a pod mounts it.
type PluginsVolume struct {
	// Reference is the plugins image, pinned by digest (a tag would let
	// nodes mount different plugins).
	Reference string
	// MountPath is <WORKDIR>/plugins-local of the unmodified base.
	MountPath string
}

// HelmPluginsImageValues is a values file for Traefik's Helm chart that
// mounts the plugins image into the unmodified Traefik image as a
// Kubernetes image volume (deployment.additionalVolumes) and enables each
// plugin as an experimental.localPlugins entry of type localPath
// (traefik-helm-chart #1492): the chart mounts the volume's
// src/<module> (subPath) at <MountPath>/src/<module> for each one and passes
// --experimental.localPlugins.<alias>.moduleName (and settings.useUnsafe)
// itself, so no additionalArguments are needed.
func HelmPluginsImageValues(ps []plugin.Plugin, v PluginsVolume) ([]byte, error) {
	if v.Reference == "" || !strings.Contains(v.Reference, "@sha256:") {
		return nil, fmt.Errorf("rendering Helm values: plugins image reference %q is not pinned by digest", v.Reference)
	}
	if !path.IsAbs(v.MountPath) || path.Clean(v.MountPath) != v.MountPath {
		return nil, fmt.Errorf("rendering Helm values: mount path %q is not a clean absolute path", v.MountPath)
	}
	local := map[string]any{}
	for _, p := range sorted(ps) {
		sub := path.Join("src", p.Module)
		entry := map[string]any{
			"type":       "localPath",
			"moduleName": p.Module,
			"volumeName": PluginsVolumeName,
			"mountPath":  path.Join(v.MountPath, sub),
			"subPath":    sub,
		}
		if p.UseUnsafe {
			entry["settings"] = map[string]any{"useUnsafe": true}
		}
		local[p.Alias] = entry
	}
	values := map[string]any{
		"deployment": map[string]any{"additionalVolumes": []any{map[string]any{
			"name":  PluginsVolumeName,
			"image": map[string]any{"reference": v.Reference, "pullPolicy": "IfNotPresent"},
		}}},
		"experimental": map[string]any{"localPlugins": local},
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Mounts the plugins image at %s of the unmodified Traefik image (a Kubernetes\n", v.MountPath)
	buf.WriteString("# image volume) and enables its plugins; the chart passes their flags itself.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(values); err != nil {
		return nil, fmt.Errorf("rendering Helm values: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rendering Helm values: %w", err)
	}
	return buf.Bytes(), nil
}
