package provision

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/xtraefik/xtraefik/internal/place"
)

// minKey is the shortest host key a worker record may be sealed with.
const minKey = 16

// record is what the cache keeps beside a worker it built: the SHA-256 of
// the binary, sealed with the host key kept outside the cache (the verdict
// cache's key). A cache is an input from whoever could write it (a restored
// CI cache, another runner): a worker without a record sealed here is never
// run.
type record struct {
	Yaegi string `json:"yaegi"`
	// Dir is the cache entry's name (<yaegi>-<source key>).
	Dir    string `json:"dir"`
	SHA256 string `json:"sha256"`
	MAC    string `json:"mac"`
}

func recordPath(exe string) string { return exe + ".record" }

func (r record) mac(key []byte) string {
	h := hmac.New(sha256.New, key)
	fmt.Fprintf(h, "xtraefik worker record\n%s\n%s\n%s\n", r.Yaegi, r.Dir, r.SHA256)
	return hex.EncodeToString(h.Sum(nil))
}

// Seal hashes the worker at exe (just built, not yet run) and writes its
// record.
func Seal(key []byte, exe, yaegi string) (string, error) {
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	r := record{Yaegi: yaegi, Dir: filepath.Base(filepath.Dir(exe)), SHA256: hex.EncodeToString(h.Sum(nil))}
	r.MAC = r.mac(key)
	data, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	return r.SHA256, place.WriteFile(recordPath(exe), data, 0o644)
}

// open returns the SHA-256 the record beside exe holds, when it was sealed
// with key for this cache entry; the error says why it is not believed.
func open(key []byte, exe, yaegi string) (string, error) {
	data, err := os.ReadFile(recordPath(exe))
	if errors.Is(err, os.ErrNotExist) {
		return "", errors.New("it has no record sealed by this host")
	}
	if err != nil {
		return "", err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return "", fmt.Errorf("its record is unreadable: %w", err)
	}
	want := r.mac(key)
	if !hmac.Equal([]byte(want), []byte(r.MAC)) || r.Yaegi != yaegi || r.Dir != filepath.Base(filepath.Dir(exe)) || len(r.SHA256) != 64 {
		return "", errors.New("its record was not sealed by this host for this worker (another key, or edited)")
	}
	return r.SHA256, nil
}

// Discard removes the cached worker for yaegi and its record: a worker whose
// bytes do not match its record is rebuilt, never run.
func Discard(cacheDir, yaegi string) error {
	exe, err := Path(cacheDir, yaegi)
	if err != nil {
		return err
	}
	return errors.Join(remove(exe), remove(recordPath(exe)))
}

func remove(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
