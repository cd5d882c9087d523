// Package kubernetes holds the examples of the plugins image on the
// official, unmodified Traefik image: Deployments for an image volume and
// for an init container with an emptyDir, and the Traefik Helm chart values
// of both. This test validates the manifests offline with kubectl-validate
// and checks they say what xtraefik prints.
package kubernetes

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// demo is the plugin the examples enable; pluginsRef the plugins image
// they mount.
var (
	demo       = plugin.Plugin{Alias: "demo", Module: "github.com/traefik/plugindemo"}
	pluginsRef = "registry.example.com/traefik-plugins@sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

// TestKubectlValidate validates both Deployments against the Kubernetes
// API's own schemas, offline. kubectl-validate v0.0.4 carries those of 1.30,
// which predate image volumes: schema-patches/ adds core/v1
// ImageVolumeSource as Kubernetes 1.33 defines it (reference, pullPolicy).
// Without the patch the image volume is refused, and a misspelt field is
// refused with it: the patch adds exactly the two fields.
func TestKubectlValidate(t *testing.T) {
	kv := testenv.KubectlValidate(t)
	files := []string{"traefik-image-volume.yaml", "traefik-init-container.yaml"}
	validate := func(args ...string) (string, error) {
		out, err := exec.Command(kv, append([]string{"--version", "1.30", "--schema-patches", "schema-patches"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := validate(files...); err != nil {
		t.Fatalf("kubectl-validate: %v\n%s", err, out)
	}
	if out, err := exec.Command(kv, "--version", "1.30", files[0]).CombinedOutput(); err == nil {
		t.Errorf("without the schema patch, the image volume validated: the patch proves nothing\n%s", out)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, bytes.Replace(data, []byte("reference:"), []byte("referense:"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := validate(bad); err == nil || !strings.Contains(out, "referense") {
		t.Errorf("a misspelt image volume field validated (%v):\n%s", err, out)
	}
}

type container struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	Args            []string `yaml:"args"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type volume struct {
	Name  string `yaml:"name"`
	Image *struct {
		Reference  string `yaml:"reference"`
		PullPolicy string `yaml:"pullPolicy"`
	} `yaml:"image"`
	EmptyDir *struct{} `yaml:"emptyDir"`
}

type deployment struct {
	Spec struct {
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				InitContainers []container `yaml:"initContainers"`
				Containers     []container `yaml:"containers"`
				Volumes        []volume    `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func decode(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// mountOf is the volume container c mounts at mountPath.
func mountOf(t *testing.T, c container, vols []volume, mountPath string) (volume, bool) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != mountPath {
			continue
		}
		for _, v := range vols {
			if v.Name == m.Name {
				return v, m.ReadOnly
			}
		}
		t.Fatalf("%s mounts the undeclared volume %s", c.Name, m.Name)
	}
	t.Fatalf("%s mounts nothing at %s", c.Name, mountPath)
	return volume{}, false
}

// TestDeployments: Traefik runs unmodified (no xtraefik image), with the
// flags xtraefik prints, non-root on a read-only root, and reads its
// plugins read-only at /plugins-local: the image volume pinned by digest,
// or the emptyDir the init container fills with install-plugins from the
// same image.
func TestDeployments(t *testing.T) {
	flags := traefikcfg.Flags([]plugin.Plugin{demo})
	for _, file := range []string{"traefik-image-volume.yaml", "traefik-init-container.yaml"} {
		t.Run(file, func(t *testing.T) {
			var d deployment
			decode(t, file, &d)
			pod := d.Spec.Template.Spec
			if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Error("the pod is not runAsNonRoot")
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want Traefik alone", len(pod.Containers))
			}
			tr := pod.Containers[0]
			if !strings.HasPrefix(tr.Image, "docker.io/library/traefik:") || !strings.Contains(tr.Image, "@sha256:") {
				t.Errorf("Traefik image %s: want the official image pinned by digest", tr.Image)
			}
			for _, f := range flags {
				if !slices.Contains(tr.Args, f) {
					t.Errorf("Traefik's args %v lack %s", tr.Args, f)
				}
			}
			for _, c := range append(slices.Clone(pod.InitContainers), tr) {
				sc := c.SecurityContext
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("%s: not a read-only root without privilege escalation", c.Name)
				}
			}
			v, ro := mountOf(t, tr, pod.Volumes, "/plugins-local")
			if !ro {
				t.Error("Traefik mounts /plugins-local writable")
			}
			switch {
			case v.Image != nil:
				if len(pod.InitContainers) != 0 || v.Image.Reference != pluginsRef || v.Image.PullPolicy != "IfNotPresent" {
					t.Errorf("image volume %+v, init containers %d: want %s, IfNotPresent, none", *v.Image, len(pod.InitContainers), pluginsRef)
				}
			case v.EmptyDir != nil:
				if len(pod.InitContainers) != 1 {
					t.Fatalf("an emptyDir at /plugins-local with %d init containers, want one to fill it", len(pod.InitContainers))
				}
				ic := pod.InitContainers[0]
				if !strings.HasPrefix(ic.Image, "ghcr.io/xtraefik/xtraefik:") {
					t.Errorf("init container image %s, want xtraefik's", ic.Image)
				}
				want := []string{"install-plugins", "--image=" + pluginsRef, "--to=/plugins-local"}
				if !slices.Equal(ic.Args, want) {
					t.Errorf("init container args %v, want %v", ic.Args, want)
				}
				if iv, iro := mountOf(t, ic, pod.Volumes, "/plugins-local"); iv.Name != v.Name || iro {
					t.Errorf("the init container writes %s (read-only %v), Traefik reads %s", iv.Name, iro, v.Name)
				}
			default:
				t.Errorf("/plugins-local is volume %+v: neither an image volume nor an emptyDir", v)
			}
		})
	}
}

// TestHelmValues: the image-volume values are what --values-file writes for
// the demo plugin; the init-container values enable the same localPlugins
// entries on an emptyDir the chart finds in deployment.additionalVolumes
// (it fails a localPath entry whose volume is not there).
func TestHelmValues(t *testing.T) {
	want, err := traefikcfg.HelmPluginsImageValues([]plugin.Plugin{demo}, traefikcfg.PluginsVolume{Reference: pluginsRef, MountPath: "/plugins-local"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("helm-values-image-volume.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("helm-values-image-volume.yaml is not what --values-file writes:\n%s\nwant:\n%s", got, want)
	}
	type values struct {
		Deployment struct {
			AdditionalVolumes []volume `yaml:"additionalVolumes"`
			InitContainers    []container
		} `yaml:"deployment"`
		Experimental struct {
			LocalPlugins map[string]map[string]any `yaml:"localPlugins"`
		} `yaml:"experimental"`
	}
	var image, initc values
	decode(t, "helm-values-image-volume.yaml", &image)
	decode(t, "helm-values-init-container.yaml", &initc)
	if !reflect.DeepEqual(image.Experimental, initc.Experimental) {
		t.Errorf("localPlugins differ: %v and %v", image.Experimental.LocalPlugins, initc.Experimental.LocalPlugins)
	}
	for file, v := range map[string]values{"image volume": image, "init container": initc} {
		for alias, p := range v.Experimental.LocalPlugins {
			name := p["volumeName"]
			found := false
			for _, vol := range v.Deployment.AdditionalVolumes {
				found = found || vol.Name == name
			}
			if !found || p["type"] != "localPath" {
				t.Errorf("%s values: plugin %s is %v on volume %v, which deployment.additionalVolumes lacks", file, alias, p["type"], name)
			}
		}
	}
	if len(initc.Deployment.AdditionalVolumes) != 1 || initc.Deployment.AdditionalVolumes[0].EmptyDir == nil {
		t.Errorf("init-container values: volumes %+v, want one emptyDir", initc.Deployment.AdditionalVolumes)
	}
}
