package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// EnvKeychain finds registry credentials in the files authn.DefaultKeychain
// reads (go-containerregistry v0.22): Docker's config.json under $HOME/.docker
// or $DOCKER_CONFIG, else $REGISTRY_AUTH_FILE, else Podman's auth.json under
// $XDG_RUNTIME_DIR or $XDG_CONFIG_HOME (default $HOME/.config), with their
// credential helpers. Unlike authn.DefaultKeychain it reads those variables
// through env, never from the process: a library caller's environment
// (build.Config.Env) decides which file is read. A nil env is os.Getenv.
func EnvKeychain(env func(string) string) authn.Keychain {
	if env == nil {
		env = os.Getenv
	}
	return &envKeychain{env: env}
}

type envKeychain struct {
	env func(string) string
	// mu serialises the reads of the auth file, as DefaultKeychain does.
	mu sync.Mutex
}

func (k *envKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	file := authFile(k.env)
	if file == "" {
		return authn.Anonymous, nil
	}
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		// As docker's config.Load: $DOCKER_CONFIG without a file is no
		// credentials.
		return authn.Anonymous, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	defer f.Close()
	cf := configfile.New(file)
	if err := cf.LoadFromReader(f); err != nil {
		return nil, fmt.Errorf("registry credentials: parse %s: %w", file, err)
	}
	return resolveIn(cf, target)
}

// resolveIn is DefaultKeychain's lookup in cf: the repository, then the
// registry (Docker Hub under its historical key).
func resolveIn(cf *configfile.ConfigFile, target authn.Resource) (authn.Authenticator, error) {
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		cfg, err := cf.GetAuthConfig(key)
		if err != nil {
			return nil, err
		}
		// GetAuthConfig sets ServerAddress; it is not a credential.
		cfg.ServerAddress = ""
		if cfg == (types.AuthConfig{}) {
			continue
		}
		return authn.FromConfig(authn.AuthConfig{
			Username:      cfg.Username,
			Password:      cfg.Password,
			Auth:          cfg.Auth,
			IdentityToken: cfg.IdentityToken,
			RegistryToken: cfg.RegistryToken,
		}), nil
	}
	return authn.Anonymous, nil
}

// authFile is the file EnvKeychain reads, in DefaultKeychain's order,
// finding it through env; "" when there is none.
func authFile(env func(string) string) string {
	home := env("HOME")
	docker := ""
	if home != "" {
		docker = filepath.Join(home, ".docker", "config.json")
	}
	if d := env("DOCKER_CONFIG"); d != "" && (docker == "" || !exists(docker)) {
		docker = filepath.Join(d, "config.json")
	}
	if docker != "" && exists(docker) {
		// DefaultKeychain then loads $DOCKER_CONFIG when set, whichever
		// file it found.
		if d := env("DOCKER_CONFIG"); d != "" {
			return filepath.Join(d, "config.json")
		}
		return docker
	}
	if f := env("REGISTRY_AUTH_FILE"); f != "" && exists(filepath.Clean(f)) {
		return filepath.Clean(f)
	}
	configDir := env("XDG_CONFIG_HOME")
	if configDir == "" && home != "" {
		configDir = filepath.Join(home, ".config")
	}
	podman := filepath.Join(env("XDG_RUNTIME_DIR"), "containers", "auth.json")
	if (env("XDG_RUNTIME_DIR") == "" || !exists(podman)) && configDir != "" {
		podman = filepath.Join(configDir, "containers", "auth.json")
	}
	if exists(podman) {
		return podman
	}
	return ""
}

func exists(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir()
}
