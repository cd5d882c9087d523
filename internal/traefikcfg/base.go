package traefikcfg

import (
	"fmt"
	"path"
	"strings"
)

// ConfigFilePaths are where Traefik's finder looks for a configuration file when
// no --configFile is given, in order (pkg/cli loader_file.go, v2.11 and v3.6),
// with the variables and the relative directory unresolved.
func ConfigFilePaths() []string {
	var out []string
	for _, base := range []string{"/etc/traefik/traefik", "$XDG_CONFIG_HOME/traefik", "$HOME/.config/traefik", "./traefik"} {
		for _, ext := range []string{"toml", "yaml", "yml"} {
			out = append(out, base+"."+ext)
		}
	}
	return out
}

// ImageConfigFilePaths resolves ConfigFilePaths for a container: env is the
// image's environment (NAME=value), workdir its working directory. Paths whose
// variable is unset are dropped, as Traefik's finder drops them. HOME defaults
// to "/" as container runtimes set it for a user without a passwd entry; pass it
// in env when it is known.
func ImageConfigFilePaths(workdir string, env []string) []string {
	vars := map[string]string{"HOME": "/"}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	if workdir == "" {
		workdir = "/"
	}
	var out []string
	for _, p := range ConfigFilePaths() {
		switch {
		case strings.HasPrefix(p, "$XDG_CONFIG_HOME/"), strings.HasPrefix(p, "$HOME/"):
			name, rest, _ := strings.Cut(p[1:], "/")
			v := vars[name]
			if v == "" {
				continue
			}
			p = path.Join(v, rest)
		case strings.HasPrefix(p, "./"):
			p = path.Join(workdir, p)
		}
		out = append(out, path.Clean(p))
	}
	return out
}

// Base is what a build knows about its base image (CheckBaseImage).
type Base struct {
	// ConfigFiles are the entries of ImageConfigFilePaths present in the base.
	ConfigFiles []string
	// Env, Entrypoint and Cmd are the base's configuration.
	Env        []string
	Entrypoint []string
	Cmd        []string
}

// CheckBase refuses a mode that a configuration file already in the base
// (configFiles: the entries of ImageConfigFilePaths present in it) would
// silently defeat, unless the recipe replaces it: with replace, the build must
// remove every file in configFiles (file mode then writes StaticFilePath).
func CheckBase(mode Mode, replace bool, configFiles []string) error {
	mode, err := ParseMode(string(mode))
	if err != nil {
		return err
	}
	if len(configFiles) == 0 || replace {
		return nil
	}
	var what string
	switch mode {
	case ModeFile:
		what = "baking " + StaticFilePath + " beside it leaves two files, and Traefik reads the first one it finds"
	case ModeEnv:
		what = "Traefik reads that file and ignores the baked TRAEFIK_* variables"
	default:
		what = "Traefik reads that file and ignores the plugin flags"
	}
	return fmt.Errorf("the base image already has a Traefik configuration file (%s): %s; set the recipe's replace option to remove it", strings.Join(configFiles, ", "), what)
}

// CheckBaseImage is CheckBase plus the base's environment and command line:
// it refuses env mode on a base that starts Traefik with flags, and returns
// warnings for the base's settings that the mode makes Traefik ignore.
func CheckBaseImage(s Static, b Base) ([]string, error) {
	mode, err := ParseMode(string(s.Mode))
	if err != nil {
		return nil, err
	}
	if err := CheckBase(mode, s.Replace, b.ConfigFiles); err != nil {
		return nil, err
	}
	var warnings []string
	if len(b.ConfigFiles) > 0 {
		warnings = append(warnings, fmt.Sprintf("the base image's configuration file (%s) is removed by the recipe's replace option", strings.Join(b.ConfigFiles, ", ")))
	}
	var traefikEnv []string
	for _, kv := range b.Env {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(strings.ToUpper(k), "TRAEFIK_") {
			traefikEnv = append(traefikEnv, k)
		}
	}
	baseFlags := flagArgs(b.Entrypoint, b.Cmd)
	switch mode {
	case ModeEnv:
		if len(baseFlags) > 0 {
			return nil, fmt.Errorf("the base image starts Traefik with flags (%s): Traefik then ignores every TRAEFIK_* variable, so %q mode cannot enable the plugins", strings.Join(baseFlags, " "), ModeEnv)
		}
	case ModeFile:
		if len(baseFlags) > 0 {
			warnings = append(warnings, fmt.Sprintf("the base image starts Traefik with flags (%s); Traefik ignores them while %s exists", strings.Join(baseFlags, " "), StaticFilePath))
		}
		if len(traefikEnv) > 0 {
			warnings = append(warnings, fmt.Sprintf("the base image sets %s; Traefik ignores them while %s exists", strings.Join(traefikEnv, ", "), StaticFilePath))
		}
	default:
		if len(traefikEnv) > 0 {
			warnings = append(warnings, fmt.Sprintf("the base image sets %s; Traefik ignores them as soon as the plugin flags are passed", strings.Join(traefikEnv, ", ")))
		}
	}
	return warnings, nil
}

// flagArgs are the arguments of the base's command line that look like flags.
func flagArgs(entrypoint, cmd []string) []string {
	var out []string
	for _, a := range append(append([]string(nil), entrypoint...), cmd...) {
		if strings.HasPrefix(a, "-") {
			out = append(out, a)
		}
	}
	return out
}
