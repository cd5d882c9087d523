package headerlib

import "net/http"

// Mark marks a request.
func Mark(h http.Header) { h.Set("X-Headerlib", "1") }
