package runcheck

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// Where the check's own files go inside the unpacked root.
const harnessDir = "/.xtraefik-runcheck"

// The API must be served by the entry point named "traefik" (api.insecure).
// The check's entry point name survives Traefik's environment variable
// decoding (lowercase, no '_').
const (
	apiEntryPoint   = "traefik"
	checkEntryPoint = "xtraefikcheck"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// launch is how Traefik is started: the image's command line, environment,
// working directory and user, plus the check's settings given through the one
// static configuration source Traefik will read.
type launch struct {
	argv []string // argv[0] as the image wrote it
	exe  string   // argv[0] resolved inside the image
	env  []string
	cwd  string // inside the image
	uid  uint32
	gid  uint32
	// source is what Traefik reads: "file:<path>", "flags" or "env".
	source string
	// configFile is the in-image path of the configuration file, if any.
	configFile string
	// hostNetwork keeps Traefik on the host's network under runc (Serve:
	// its entry points are published there and its backends are the
	// user's).
	hostNetwork bool
}

// view maps in-image paths to the paths the process uses: identical under runc
// and chroot, prefixed with the unpacked root when the process runs unconfined.
type view func(string) string

// plan decides how Traefik is started, following Traefik's own rule (pkg/cli,
// v2.11 and v3.6): a configuration file wins if one is found, else flags if any
// are passed, else TRAEFIK_* variables. userArgs replace the image's Cmd, as
// arguments to `docker run` or a pod's args do; the check's settings go into
// the source Traefik will read, so that what the image does with the user's
// arguments is what gets observed:
//   - file: the found file is amended (entry points, API, file provider, log)
//     in the private copy; experimental.localPlugins stays as baked.
//   - flags: the check's flags are passed before userArgs.
//   - env: the check's TRAEFIK_* variables are added to the image's.
func plan(rootfs string, cfg *v1.Config, userArgs []string, h harness, inside view) (*launch, error) {
	l := &launch{cwd: cfg.WorkingDir}
	if l.cwd == "" {
		l.cwd = "/"
	}
	if !path.IsAbs(l.cwd) {
		return nil, fmt.Errorf("image WORKDIR %q is not absolute", l.cwd)
	}
	uid, gid, home, err := resolveUser(rootfs, cfg.User)
	if err != nil {
		return nil, err
	}
	l.uid, l.gid = uid, gid
	env := newEnv(cfg.Env)
	if _, ok := env.get("PATH"); !ok {
		env.set("PATH", defaultPath)
	}
	if _, ok := env.get("HOME"); !ok {
		env.set("HOME", home)
	}

	var prog, defaultArgs []string
	switch {
	case len(cfg.Entrypoint) > 0:
		prog, defaultArgs = cfg.Entrypoint, cfg.Cmd
	case len(cfg.Cmd) > 0:
		// No entrypoint: the first Cmd word is the program (as with
		// `docker run image traefik --flag`).
		prog, defaultArgs = cfg.Cmd[:1], cfg.Cmd[1:]
	default:
		return nil, errors.New("the image has neither an entrypoint nor a command")
	}
	args := defaultArgs
	if len(userArgs) > 0 {
		args = userArgs
	}

	l.configFile, err = findConfigFile(rootfs, l.cwd, env.list(), args)
	if err != nil {
		return nil, err
	}
	switch {
	case l.configFile != "":
		l.source = "file:" + l.configFile
		if err := amendConfigFile(rootfs, l.configFile, h); err != nil {
			return nil, err
		}
		l.argv = append(append([]string(nil), prog...), args...)
		if p := inside(l.configFile); p != l.configFile {
			// Unconfined, absolute paths would resolve on the host.
			l.argv = append(l.argv, "--configFile="+p)
		}
	case len(userArgs) > 0:
		l.source = "flags"
		l.argv = append(append(append([]string(nil), prog...), h.flags()...), userArgs...)
	case len(flagArgs(defaultArgs)) > 0:
		l.source = "flags"
		l.argv = append(append(append([]string(nil), prog...), defaultArgs...), h.flags()...)
	default:
		l.source = "env"
		l.argv = append(append([]string(nil), prog...), defaultArgs...)
		for _, kv := range h.env() {
			k, v, _ := strings.Cut(kv, "=")
			env.set(k, v)
		}
	}

	if l.exe, err = lookPath(rootfs, l.argv[0], l.cwd, env); err != nil {
		return nil, err
	}
	if inside("/") != "/" {
		// Unconfined: the image's PATH and HOME must point into the root too.
		var dirs []string
		p, _ := env.get("PATH")
		for _, d := range filepath.SplitList(p) {
			dirs = append(dirs, inside(d))
		}
		env.set("PATH", strings.Join(dirs, ":"))
		if h, _ := env.get("HOME"); h != "" {
			env.set("HOME", inside(h))
		}
	}
	l.env = env.list()
	return l, nil
}

func flagArgs(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			out = append(out, a)
		}
	}
	return out
}

// configFileFlag returns the value of --configFile (Traefik accepts any case
// and one or two dashes, with "=" or as the next argument).
func configFileFlag(args []string) string {
	for i, a := range args {
		name := strings.TrimLeft(a, "-")
		if name == a {
			continue
		}
		key, val, hasVal := strings.Cut(name, "=")
		if !strings.EqualFold(key, "configFile") {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// findConfigFile returns the in-image path of the file Traefik would load.
func findConfigFile(rootfs, cwd string, env, args []string) (string, error) {
	candidates := traefikcfg.ImageConfigFilePaths(cwd, env)
	if f := configFileFlag(args); f != "" {
		if !path.IsAbs(f) {
			f = path.Join(cwd, f)
		}
		candidates = append([]string{f}, candidates...)
	}
	for _, c := range candidates {
		host, err := securejoin.SecureJoin(rootfs, c)
		if err != nil {
			return "", fmt.Errorf("looking for %s in the image: %w", c, err)
		}
		if fi, err := os.Stat(host); err == nil && fi.Mode().IsRegular() {
			return c, nil
		}
	}
	return "", nil
}

// amendConfigFile rewrites the image's configuration file in the unpacked
// copy with the check's settings.
func amendConfigFile(rootfs, configFile string, h harness) error {
	switch strings.ToLower(path.Ext(configFile)) {
	case ".yml", ".yaml":
	default:
		return fmt.Errorf("the image's configuration file %s is not YAML: the runtime check can only amend YAML files", configFile)
	}
	host, err := securejoin.SecureJoin(rootfs, configFile)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(host)
	if err != nil {
		return fmt.Errorf("reading the image's configuration file: %w", err)
	}
	out, err := traefikcfg.Amend(b, h.settings())
	if err != nil {
		return fmt.Errorf("amending the image's configuration file %s: %w", configFile, err)
	}
	return os.WriteFile(host, out, 0o644)
}

// lookPath resolves argv0 inside the image as a runtime would: a name with a
// slash relative to the working directory, a bare name through PATH.
func lookPath(rootfs, argv0, cwd string, env *envList) (string, error) {
	var candidates []string
	if strings.Contains(argv0, "/") {
		candidates = []string{path.Join(cwd, argv0)}
		if path.IsAbs(argv0) {
			candidates = []string{path.Clean(argv0)}
		}
	} else {
		p, _ := env.get("PATH")
		for _, d := range filepath.SplitList(p) {
			if d == "" {
				d = "."
			}
			if !path.IsAbs(d) {
				d = path.Join(cwd, d)
			}
			candidates = append(candidates, path.Join(d, argv0))
		}
	}
	for _, c := range candidates {
		host, err := securejoin.SecureJoin(rootfs, c)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(host); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf("the image's program %q is not an executable file in the image (looked at %s)", argv0, strings.Join(candidates, ", "))
}

// resolveUser turns the image's USER (name or id, optionally :group) into ids
// through the image's own /etc/passwd and /etc/group, as container runtimes do.
func resolveUser(rootfs, spec string) (uid, gid uint32, home string, err error) {
	if spec == "" {
		spec = "0"
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	home = "/"
	passwd, _ := readColonFile(rootfs, "/etc/passwd")
	found := false
	for _, e := range passwd {
		if len(e) < 6 || (e[0] != user && e[2] != user) {
			continue
		}
		u, err1 := strconv.ParseUint(e[2], 10, 32)
		g, err2 := strconv.ParseUint(e[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		uid, gid, home, found = uint32(u), uint32(g), e[5], true
		break
	}
	if !found {
		u, perr := strconv.ParseUint(user, 10, 32)
		if perr != nil {
			return 0, 0, "", fmt.Errorf("image user %q is not in the image's /etc/passwd", user)
		}
		uid, gid = uint32(u), 0
	}
	if hasGroup {
		g, perr := strconv.ParseUint(group, 10, 32)
		if perr != nil {
			groups, _ := readColonFile(rootfs, "/etc/group")
			ok := false
			for _, e := range groups {
				if len(e) >= 3 && e[0] == group {
					if g, perr = strconv.ParseUint(e[2], 10, 32); perr == nil {
						ok = true
						break
					}
				}
			}
			if !ok {
				return 0, 0, "", fmt.Errorf("image group %q is not in the image's /etc/group", group)
			}
		}
		gid = uint32(g)
	}
	if home == "" {
		home = "/"
	}
	return uid, gid, home, nil
}

func readColonFile(rootfs, name string) ([][]string, error) {
	host, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(host)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var out [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, s.Err()
}

// envList is an ordered environment where a later value replaces an earlier one.
type envList struct {
	keys []string
	vals map[string]string
}

func newEnv(kvs []string) *envList {
	e := &envList{vals: map[string]string{}}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		e.set(k, v)
	}
	return e
}

func (e *envList) get(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *envList) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.keys))
	for _, k := range e.keys {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}
