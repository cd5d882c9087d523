package images

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// TestPushErrorsHideUploadState: a registry that drops the connection in
// the middle of a blob upload gives an error quoting the upload URL; the
// session token in its _state parameter is a credential and must not show.
func TestPushErrorsHideUploadState(t *testing.T) {
	const secret = "UPLOADSESSIONSECRET"
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "_state=") {
			// The upload itself: hang up without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			http.Error(w, "upload refused", http.StatusInternalServerError)
			return
		}
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, r)
		if loc := rec.Header().Get("Location"); r.Method == http.MethodPost && strings.Contains(loc, "/blobs/uploads/") {
			rec.Header().Set("Location", loc+"?_state="+secret)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	_, err := Push(ctx(t), host+"/team/traefik:v1", assembleSingle(t), Options{RequestTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("push through a registry that hangs up succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error shows the upload session: %v", err)
	}
	if !strings.Contains(err.Error(), "_state=REDACTED") && !strings.Contains(err.Error(), host) {
		t.Errorf("the error does not say where the push failed: %v", err)
	}
}
