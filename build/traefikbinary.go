package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/mod/semver"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/cacherepo"
	"github.com/xtraefik/xtraefik/internal/gobuildinfo"
	"github.com/xtraefik/xtraefik/internal/source/modproxy"
	"github.com/xtraefik/xtraefik/verify"
	"github.com/xtraefik/xtraefik/verify/interpreters"
)

// defaultPath is the PATH a container runtime gives an image without one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxTraefikBinary bounds the base's Traefik binary read for its build info
// (Traefik's are 150–180 MB): a base whose binary is larger is refused, and
// nothing of it is read.
const maxTraefikBinary = 512 << 20

// Where a Target's interpreters were read (Target.InterpreterSource).
const (
	// InterpreterFromBinary: the Go build info of the base's own Traefik
	// binary, which names the exact modules it links.
	InterpreterFromBinary = "binary"
	// InterpreterFromGoMod: Traefik's go.mod for that exact version, from
	// the Go module proxy (checked against the checksum database).
	InterpreterFromGoMod = "go.mod"
	// InterpreterFromTable: xtraefik's own table of releases.
	InterpreterFromTable = "table"
)

// binaryInfo is what the base's Traefik binary says, kept in the blob
// cache by platform manifest digest: read once per base.
type binaryInfo struct {
	// Path is the binary's path in the image, Layer the layer holding it;
	// Path is "" when no layer holds one.
	Path  string  `json:"path,omitempty"`
	Layer v1.Hash `json:"layer"`
	// Version is the Traefik version it was built as; "" when it names none.
	Version string `json:"version,omitempty"`
	// In is what it links; In.Yaegi is "" for a program that is no Go
	// program linking Yaegi, and then NotTraefik says what it is.
	In         interpreters.Interpreter `json:"interpreter"`
	NotTraefik string                   `json:"notTraefik,omitempty"`
}

// binaryRecordVersion changes when binaryInfo's meaning does.
const binaryRecordVersion = "xtraefik traefik-binary v1"

// binaryKey names the record of the binary of the image with manifest d.
func binaryKey(d v1.Hash) string {
	sum := sha256.Sum256([]byte(binaryRecordVersion + "\x00" + d.String()))
	return hex.EncodeToString(sum[:])
}

// binaryCache keeps what base images' Traefik binaries say, shared by a
// fleet of runners (*cacherepo.Store): records under a hex key, signed by
// their writer and returned only when a trusted key signed them.
type binaryCache interface {
	GetBinary(ctx context.Context, key string) ([]byte, error)
	PutBinary(ctx context.Context, key string, record []byte) error
}

// baseTraefik reads what the base's Traefik binary (first platform) says:
// from the blob cache's sealed record for its manifest digest, else from
// the fleet's signed record (options.Binaries), else by streaming its
// layers from the top down to the first that holds it, reading only that
// file (at most maxTraefikBinary bytes). The error is for a binary too
// large or a cancelled ctx; any other failure to read it is unknown
// (false), with why. warnings say what of the fleet's cache was ignored
// or failed.
func baseTraefik(ctx context.Context, r *runner, o *options, base *images.Base) (info binaryInfo, ok bool, why string, warnings []string, err error) {
	if len(base.Platforms) == 0 {
		return binaryInfo{}, false, "the base has no platform image", nil, nil
	}
	store := o.Images.Cache
	key := binaryKey(base.Platforms[0].Digest)
	if store != nil {
		if data, found := store.Ref(key); found && json.Unmarshal(data, &info) == nil {
			return info, true, "", nil, nil
		}
	}
	keep := func(info binaryInfo) {
		if store == nil {
			return
		}
		if data, err := json.Marshal(info); err == nil {
			_ = store.SetRef(key, data) // a cache that cannot keep it costs a read next time
		}
	}
	if o.Binaries != nil {
		fleet, found, warning := fleetBinary(ctx, o.Binaries, key, base.Platforms[0].Digest)
		if warning != "" {
			warnings = append(warnings, warning)
		}
		if found {
			keep(fleet)
			return fleet, true, "", warnings, nil
		}
	}
	cf, err := base.ConfigFile(0)
	if err != nil {
		return binaryInfo{}, false, err.Error(), warnings, nil
	}
	paths := traefikPaths(cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env)
	subject := base.Ref.String()
	if o.Recipe != nil {
		subject = o.Recipe.Base
	}
	r.Start(StageTraefik, subject)
	info, err = readBinary(ctx, r, base, subject, paths)
	switch {
	case errors.Is(err, images.ErrFileTooLarge) || ctx.Err() != nil:
		r.Done(StageTraefik, subject, "", err)
		return binaryInfo{}, false, "", warnings, err
	case err != nil:
		r.Done(StageTraefik, subject, "not read: "+err.Error(), nil)
		return binaryInfo{}, false, err.Error(), warnings, nil
	}
	r.Done(StageTraefik, subject, info.summary(), nil)
	keep(info)
	if o.Binaries != nil {
		data, err := json.Marshal(info)
		if err == nil {
			err = o.Binaries.PutBinary(ctx, key, data)
		}
		if err != nil {
			warnings = append(warnings, "the cache repository did not take the record of the base's Traefik binary: "+err.Error())
		}
	}
	return info, true, "", warnings, nil
}

// fleetBinary reads the fleet's record of the binary of the image with
// manifest d. A record that is missing is a miss; one that no trusted key
// signed, that does not decode, or a cache that fails, is a miss with a
// warning: the layer is read instead.
func fleetBinary(ctx context.Context, c binaryCache, key string, d v1.Hash) (binaryInfo, bool, string) {
	data, err := c.GetBinary(ctx, key)
	switch {
	case errors.Is(err, cacherepo.ErrNotFound):
		return binaryInfo{}, false, ""
	case err != nil:
		return binaryInfo{}, false, fmt.Sprintf("the cache repository's record of the Traefik binary of %s is ignored, the base's layers are read: %v", d, err)
	}
	var info binaryInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return binaryInfo{}, false, fmt.Sprintf("the cache repository's record of the Traefik binary of %s does not decode, the base's layers are read: %v", d, err)
	}
	return info, true, ""
}

func (b binaryInfo) summary() string {
	switch {
	case b.Path == "":
		return "no Traefik binary found"
	case b.NotTraefik != "":
		return b.Path + ": " + b.NotTraefik
	}
	return fmt.Sprintf("%s: Traefik %s, yaegi %s", b.Path, orUnknown(b.Version), b.In.Yaegi)
}

func orUnknown(s string) string {
	if s == "" {
		return "(version not named)"
	}
	return s
}

// readBinary streams the base's layers to the binary and reads its build
// info without a copy; a binary laid out so that its build info is not
// where that reading keeps (gobuildinfo.ErrIncomplete) is read again into
// a temporary file of its size, which maxTraefikBinary bounds.
func readBinary(ctx context.Context, r *runner, base *images.Base, subject string, paths []string) (binaryInfo, error) {
	progress := func(_ v1.Hash, done, total int64) { r.Progress(StageTraefik, subject, done, total) }
	var (
		bi      *debug.BuildInfo
		readErr error
	)
	f, err := base.ReadTopFile(ctx, 0, paths, maxTraefikBinary, progress, func(f images.TopFile, r io.Reader) error {
		bi, readErr = gobuildinfo.Read(r, f.Size)
		return nil
	})
	if err == nil && errors.Is(readErr, gobuildinfo.ErrIncomplete) {
		f, err = base.ReadTopFile(ctx, 0, []string{f.Path}, maxTraefikBinary, progress, func(f images.TopFile, r io.Reader) error {
			bi, readErr = gobuildinfo.Spool(r, f.Size, "")
			return nil
		})
	}
	if err != nil {
		return binaryInfo{}, err
	}
	info := binaryInfo{Path: f.Path, Layer: f.Layer}
	switch {
	case f.Path == "":
		return info, nil
	case readErr != nil:
		if ctx.Err() != nil {
			return binaryInfo{}, ctx.Err()
		}
		if errors.Is(readErr, gobuildinfo.ErrNotGo) {
			// A fact about the image, kept like any other.
			info.NotTraefik = readErr.Error()
			return info, nil
		}
		return binaryInfo{}, readErr
	}
	in, linksYaegi := interpreters.FromBuildInfo(bi)
	if !linksYaegi {
		info.NotTraefik = "a Go program linking no Yaegi (module " + bi.Main.Path + ")"
		return info, nil
	}
	info.In, info.Version = in, verify.TraefikVersionFromBuildInfo(bi)
	return info, nil
}

// goModReader reads a Traefik release's go.mod; *modproxy.Client is one.
type goModReader interface {
	GoMod(ctx context.Context, module, version string) ([]byte, error)
}

// traefikGoMod reads the interpreters Traefik version's own go.mod
// requires, from the Go module proxies the environment names (GOPROXY,
// GONOSUMDB, GOSUMDB, as for module-proxy plugins), or from the module
// cache offline. ok is false, with why, when it cannot be read.
func traefikGoMod(ctx context.Context, o *options, version string) (in interpreters.Interpreter, ok bool, why string) {
	var reader goModReader
	if r, isReader := o.Modules.(goModReader); isReader {
		reader = r
	} else if o.Modules == nil && o.CacheDir != "" {
		c, err := modproxy.New(modproxy.Options{Env: o.Env, CacheDir: filepath.Join(o.CacheDir, "mod"), Offline: o.Offline})
		if err != nil {
			return in, false, err.Error()
		}
		reader = c
	}
	in, err := goModInterpreter(ctx, reader, version)
	if err != nil {
		return in, false, err.Error()
	}
	return in, true, ""
}

// goModInterpreter reads the interpreters Traefik version's own go.mod
// requires, through reader (the go.mod alone: no module zip, no image);
// the error says why it cannot tell.
func goModInterpreter(ctx context.Context, reader goModReader, version string) (interpreters.Interpreter, error) {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return interpreters.Interpreter{}, errors.New("no exact Traefik version to read the go.mod of")
	}
	mod := "github.com/traefik/traefik/" + semver.Major(version)
	if semver.Major(version) == "v1" {
		mod = "github.com/containous/traefik"
	}
	if reader == nil {
		return interpreters.Interpreter{}, errors.New("no module proxy to read " + mod + "@" + version + "'s go.mod from")
	}
	data, err := reader.GoMod(ctx, mod, version)
	if err != nil {
		return interpreters.Interpreter{}, err
	}
	in, ok, err := interpreters.FromGoMod(mod+"@"+version+"/go.mod", data)
	switch {
	case err != nil:
		return interpreters.Interpreter{}, err
	case !ok:
		return interpreters.Interpreter{}, errors.New(mod + "@" + version + "'s go.mod requires no Yaegi")
	}
	return in, nil
}

// traefikPaths are where the image's Traefik binary may be: the programs
// named traefik in its entrypoint or command (through its PATH when not
// absolute), then where the official image keeps it.
func traefikPaths(entrypoint, cmd, env []string) []string {
	search := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	var out []string
	for _, w := range append(append([]string(nil), entrypoint...), cmd...) {
		if path.Base(w) != "traefik" {
			continue
		}
		if path.IsAbs(w) {
			out = append(out, w)
			continue
		}
		for _, d := range strings.Split(search, ":") {
			if path.IsAbs(d) {
				out = append(out, path.Join(d, w))
			}
		}
	}
	return append(out, "/usr/local/bin/traefik")
}

var (
	_ goModReader = (*modproxy.Client)(nil)
	_ binaryCache = (*cacherepo.Store)(nil)
)
