package verify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/xtraefik/xtraefik/internal/probe"
)

// recorder is the next handler: it records whether the plugin passed the
// request on.
type recorder struct{ called bool }

func (r *recorder) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.called = true
	w.Header().Set("X-Xtraefik-Next", "1")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("next\n"))
}

// clientPort is the loopback client's port in the request handed to the
// plugin; Traefik's real client has some ephemeral port.
const clientPort = 40000

// serve sends the probe request through h, as Traefik hands it to a router's
// middlewares, and judges the answer with the criterion the runtime check
// uses. A panic is a FAIL (Traefik recovers it into a 500), told apart from
// a 500 the plugin writes itself, which passes with a warning.
func serve(ctx context.Context, h http.Handler, next *recorder, j *job) (out outcome, rec *httptest.ResponseRecorder) {
	defer func() {
		if v := recover(); v != nil {
			out = outcome{Reason: fmt.Sprintf("panic serving a request: %v", v)}
		}
	}()
	req := probe.Request(ctx, j.Name, probe.RemoteAddr(clientPort), probe.ServerHostname)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	ok, verdict, warning := probe.Judge(probe.Answer{Status: rec.Code, Reached: next.called}, probe.Expect{Status: j.ExpectStatus})
	out = outcome{OK: ok, Status: rec.Code, Warning: warning}
	line := fmt.Sprintf("request %s %s: %s", probe.Method, req.URL.Path, verdict)
	if ok {
		out.Notes = []string{line}
	} else {
		out.Reason = line
	}
	return out, rec
}
