package verify

import (
	"os"
	"runtime"
)

// warmEnv asks a worker started ahead of its job to warm up before it says
// it is ready (see warmUp). The worker removes it from its environment.
const warmEnv = "XTRAEFIK_VERIFY_WARM"

// warmHeapBytes is the heap a warm worker touches and frees before its hello.
const warmHeapBytes = 8 << 20

// warmUp has the worker's heap grow before its job. A worker is a fresh
// process: compiling its plugin grows the heap page by page, about 1,500
// page faults for fail2ban or geoblock, a sixth of the job's CPU. Touching
// warmHeapBytes and collecting them leaves those pages mapped and free
// (under the worker's heap goal, so they are kept), and the job reuses them:
// about 200 faults. It runs only xtraefik's own code, before any job (and so
// any key or plugin) reached the worker.
func warmUp() {
	b := make([]byte, warmHeapBytes)
	for i := 0; i < len(b); i += os.Getpagesize() {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	runtime.GC()
}
