package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Key algorithms OpenSSLKeyPair makes.
const (
	KeyEd25519 = "ed25519"
	KeyP256    = "p256"
)

// OpenSSLKeyPair makes a key pair as docs/caches-and-fleets.md tells a user to:
// `openssl genpkey` (PKCS#8 "PRIVATE KEY" PEM) and `openssl pkey -pubout`
// (PKIX "PUBLIC KEY" PEM), in a new directory; it returns both paths.
// Without openssl the same PEM is written from Go (the format is the
// standard's, not the tool's), unless XTRAEFIK_E2E is set.
func OpenSSLKeyPair(t testing.TB, alg string) (key, pub string) {
	t.Helper()
	dir := t.TempDir()
	key, pub = filepath.Join(dir, alg+".key"), filepath.Join(dir, alg+".pub")
	args := []string{"genpkey", "-algorithm", "ed25519", "-out", key}
	if alg == KeyP256 {
		args = []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key}
	} else if alg != KeyEd25519 {
		t.Fatalf("OpenSSLKeyPair: unknown algorithm %q", alg)
	}
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if Strict() {
			missing(t, "openssl", err)
		}
		writeGoKeyPair(t, alg, key, pub)
		return key, pub
	}
	for _, a := range [][]string{args, {"pkey", "-in", key, "-pubout", "-out", pub}} {
		if out, err := exec.Command(bin, a...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", a, err, out)
		}
	}
	return key, pub
}

func writeGoKeyPair(t testing.TB, alg, key, pub string) {
	t.Helper()
	var priv crypto.Signer
	var err error
	if alg == KeyP256 {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
}
