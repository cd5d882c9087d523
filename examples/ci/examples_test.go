// Package ci holds the CI examples (GitHub Actions, GitLab CI, a Kubernetes
// Job); this test lints them with the ecosystem's tools where they are
// installed (scripts/test installs them; with XTRAEFIK_E2E set a missing one
// fails) and checks, always, what docs/ci-and-kubernetes.md promises about each: full
// containment where the runner allows it, signing, pushing, and a pod
// without privileges.
package ci

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s: ok", filepath.Base(name), strings.Join(args, " "))
}

// TestGitHubActionsExample lints the workflow with actionlint, which checks
// the workflow syntax, expressions and contexts, action inputs, and (with
// shellcheck installed) every run: script.
func TestGitHubActionsExample(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil && testenv.Strict() {
		t.Fatal("shellcheck is not installed (apt-get install shellcheck): actionlint would not check the run: scripts")
	}
	actionlint := testenv.GoTool(t, "actionlint", "go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12")
	run(t, actionlint, "-no-color", "github-actions.yml")

	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Run string `yaml:"run"`
				If  string `yaml:"if"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	decode(t, "github-actions.yml", &wf)
	var verify, build string
	for _, j := range wf.Jobs {
		for _, s := range j.Steps {
			switch {
			case strings.Contains(s.Run, " verify -f "):
				verify = s.Run
			case strings.Contains(s.Run, " build -f "):
				build = s.Run
			}
		}
	}
	for what, run := range map[string]string{"verify": verify, "build": build} {
		if run == "" {
			t.Fatalf("no step runs xtraefik %s", what)
		}
		mustContain(t, "the "+what+" step", run, `"$XTRAEFIK_IMAGE" `+what, "--sandbox=require", "seccomp=unconfined")
	}
	mustContain(t, "the build step", build, "--push ", "--sign-key ", "-e COSIGN_PASSWORD", "DOCKER_CONFIG=")
	if strings.Contains(verify, "secrets") || strings.Contains(verify, "COSIGN") {
		t.Error("the verify step sees credentials; it needs none")
	}
}

// gitlabJobKeys are the keywords of a GitLab CI job
// (https://docs.gitlab.com/ci/yaml/): an unknown key is a typo GitLab
// would reject.
var gitlabJobKeys = map[string]bool{
	"after_script": true, "allow_failure": true, "artifacts": true, "before_script": true, "cache": true,
	"coverage": true, "dast_configuration": true, "dependencies": true, "environment": true, "extends": true,
	"hooks": true, "id_tokens": true, "identity": true, "image": true, "inherit": true, "interruptible": true,
	"manual_confirmation": true, "needs": true, "pages": true, "parallel": true, "release": true,
	"resource_group": true, "retry": true, "rules": true, "run": true, "script": true, "secrets": true,
	"services": true, "stage": true, "tags": true, "timeout": true, "trigger": true, "variables": true,
	"when": true, "only": true, "except": true,
}

// TestGitLabCIExample checks the GitLab job's structure: no linter of
// GitLab CI works offline (GitLab's lint runs on a GitLab server), so this
// parses the YAML and checks keys against GitLab's job keywords and what a
// job needs (an image with a shell, a non-empty script).
func TestGitLabCIExample(t *testing.T) {
	var doc map[string]yaml.Node
	decode(t, "gitlab-ci.yml", &doc)
	job, ok := doc["traefik-image"]
	if !ok || job.Kind != yaml.MappingNode {
		t.Fatalf("gitlab-ci.yml: no job traefik-image")
	}
	var keys map[string]yaml.Node
	if err := job.Decode(&keys); err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		if !gitlabJobKeys[k] {
			t.Errorf("gitlab-ci.yml: traefik-image.%s is not a GitLab CI job keyword", k)
		}
	}
	var j struct {
		Stage string `yaml:"stage"`
		Image struct {
			Name       string   `yaml:"name"`
			Entrypoint []string `yaml:"entrypoint"`
		} `yaml:"image"`
		Variables map[string]string `yaml:"variables"`
		Script    []string          `yaml:"script"`
		Cache     struct {
			Key struct {
				Files []string `yaml:"files"`
			} `yaml:"key"`
			Paths []string `yaml:"paths"`
		} `yaml:"cache"`
		Rules []map[string]any `yaml:"rules"`
	}
	if err := job.Decode(&j); err != nil {
		t.Fatalf("gitlab-ci.yml: traefik-image: %v", err)
	}
	if j.Image.Name == "" || !strings.HasSuffix(j.Image.Name, ":debug") {
		t.Errorf("gitlab-ci.yml: image %q: the job needs an image with a shell", j.Image.Name)
	}
	if len(j.Script) == 0 {
		t.Fatal("gitlab-ci.yml: empty script")
	}
	script := strings.Join(j.Script, "\n")
	mustContain(t, "gitlab-ci.yml's script", script, `crane export --platform linux/amd64 "$XTRAEFIK_IMAGE"`,
		"xtraefik verify -f recipe.yaml", "xtraefik build -f recipe.yaml", `--sandbox="$XTRAEFIK_SANDBOX"`,
		"--push ", "--sign-key ", "crane auth login")
	if s := j.Variables["XTRAEFIK_SANDBOX"]; s != "auto" && s != "require" {
		t.Errorf("gitlab-ci.yml: XTRAEFIK_SANDBOX=%q", s)
	}
	if !strings.HasPrefix(j.Cache.Paths[0], ".cache/xtraefik") || j.Variables["XDG_CACHE_HOME"] != "$CI_PROJECT_DIR/.cache" {
		t.Errorf("gitlab-ci.yml: the cache (%v) is not xtraefik's cache directory (XDG_CACHE_HOME=%s)", j.Cache.Paths, j.Variables["XDG_CACHE_HOME"])
	}
}

// TestKubernetesExample validates the manifests with kubectl-validate,
// which checks them against the Kubernetes API's own OpenAPI schemas (those
// of 1.30, the newest built into v0.0.4: no cluster, no download), and
// checks the pod runs without privileges.
func TestKubernetesExample(t *testing.T) {
	t.Run("kubectl-validate", func(t *testing.T) {
		kv := testenv.KubectlValidate(t)
		run(t, kv, "--version", "1.30", "kubernetes-job.yaml")
	})

	data, err := os.ReadFile("kubernetes-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var job *k8sJob
	var configMaps []string
	for {
		var obj struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		var node yaml.Node
		if err := dec.Decode(&node); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kubernetes-job.yaml: %v", err)
		}
		if err := node.Decode(&obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "Job":
			job = &k8sJob{}
			if err := node.Decode(job); err != nil {
				t.Fatal(err)
			}
		case "ConfigMap":
			configMaps = append(configMaps, obj.Metadata.Name)
		}
	}
	if job == nil {
		t.Fatal("kubernetes-job.yaml: no Job")
	}
	pod := job.Spec.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Error("pod: not runAsNonRoot with a non-root runAsUser")
	}
	if pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod: seccompProfile %q, want RuntimeDefault", pod.SecurityContext.SeccompProfile.Type)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("pod: %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container: allowPrivilegeEscalation is not false")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container: readOnlyRootFilesystem is not true")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container: privileged")
	case len(sc.Capabilities.Add) > 0 || strings.Join(sc.Capabilities.Drop, ",") != "ALL":
		t.Errorf("container: capabilities add %v drop %v, want none and ALL", sc.Capabilities.Add, sc.Capabilities.Drop)
	}
	volumes := map[string]k8sVolume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]k8sVolume{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("container: mount %s of an undeclared volume", m.Name)
		}
		mounts[m.MountPath] = v
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	args := strings.Join(c.Args, " ")
	mustContain(t, "the container's args", args, "build -f /recipe/recipe.yaml", "--push=", "--cache-dir=/cache")
	if v := mounts["/cache"]; v.EmptyDir == nil {
		t.Error("container: --cache-dir=/cache is not an emptyDir (the root filesystem is read-only)")
	}
	if v := mounts[env["TMPDIR"]]; env["TMPDIR"] == "" || v.EmptyDir == nil {
		t.Errorf("container: TMPDIR=%q is not an emptyDir", env["TMPDIR"])
	}
	if v := mounts[env["DOCKER_CONFIG"]]; env["DOCKER_CONFIG"] == "" || v.Secret == nil ||
		len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != ".dockerconfigjson" || v.Secret.Items[0].Path != "config.json" {
		t.Errorf("container: DOCKER_CONFIG=%q is not a dockerconfigjson Secret mounted as config.json", env["DOCKER_CONFIG"])
	}
	if v := mounts["/recipe"]; v.ConfigMap == nil || !contains(configMaps, v.ConfigMap.Name) {
		t.Error("container: /recipe is not the ConfigMap of the example")
	}
}

type k8sJob struct {
	Spec struct {
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
					RunAsUser      int   `yaml:"runAsUser"`
					SeccompProfile struct {
						Type string `yaml:"type"`
					} `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
				Containers []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					SecurityContext struct {
						AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
						ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
						Privileged               *bool `yaml:"privileged"`
						Capabilities             struct {
							Add  []string `yaml:"add"`
							Drop []string `yaml:"drop"`
						} `yaml:"capabilities"`
					} `yaml:"securityContext"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []k8sVolume `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sVolume struct {
	Name     string    `yaml:"name"`
	EmptyDir *struct{} `yaml:"emptyDir"`
	Secret   *struct {
		SecretName string `yaml:"secretName"`
		Items      []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"secret"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
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

func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
