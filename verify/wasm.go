package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/http-wasm/http-wasm-host-go/api"
	"github.com/http-wasm/http-wasm-host-go/handler"
	wasm "github.com/http-wasm/http-wasm-host-go/handler/nethttp"
	"github.com/stealthrocket/wasi-go/imports"
	wazergo_wasip1 "github.com/stealthrocket/wasi-go/imports/wasi_snapshot_preview1"
	"github.com/stealthrocket/wazergo"
	"github.com/tetratelabs/wazero"
	wazero_wasip1 "github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// checkWasm loads, compiles and runs a wasm middleware the way Traefik v3.6.12
// does (pkg/plugins/middlewarewasm.go, wasip.go): wazero, the WASI host (with
// the sockets extension when the guest imports it), http-wasm's net/http
// middleware with the configuration as JSON guest config.
func checkWasm(ctx context.Context, j *job, phase func(string), logs *tail) outcome {
	config, err := parseConfig(j.Config)
	if err != nil {
		return failure("invalid configuration", err)
	}
	phase("load")
	p := filepath.Join(j.GoPath, "src", filepath.FromSlash(j.Module), filepath.FromSlash(j.WasmFile))
	code, err := os.ReadFile(p)
	if err != nil {
		return failure("loading Wasm binary", err)
	}

	phase("compile")
	cache := wazero.NewCompilationCache()
	defer cache.Close(ctx)
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	defer rt.Close(ctx)
	guest, err := rt.CompileModule(ctx, code)
	if err != nil {
		return failure("compiling guest module", err)
	}

	phase("instantiate host")
	applyCtx, err := instantiateHost(ctx, rt, guest)
	if err != nil {
		return failure("building Wasm middleware: instantiating host module", err)
	}

	phase("create middleware")
	modCfg := wazero.NewModuleConfig().WithSysWalltime().WithStartFunctions("_start", "_initialize")
	// Traefik marshals the map it was given; a nil map becomes "null".
	data, err := json.Marshal(config)
	if err != nil {
		return failure("building Wasm middleware: marshaling config", err)
	}
	mw, err := wasm.NewMiddleware(applyCtx(ctx), code,
		handler.ModuleConfig(modCfg),
		handler.Logger(wasmLogger{logs}),
		handler.GuestConfig(data),
		handler.Runtime(func(context.Context) (wazero.Runtime, error) { return rt, nil }),
	)
	if err != nil {
		return failure("building Wasm middleware: creating middleware", err)
	}
	defer mw.Close(ctx)

	phase("request")
	next := &recorder{}
	h := mw.NewHandler(ctx, next)
	out, rec := serve(ctx, wrapCtx(h, applyCtx), next, j)
	// http-wasm's net/http handler turns a guest error (a trap) into a 500
	// whose body is the error: the request failed inside the plugin, the
	// wasm form of a panic, a FAIL whatever the recipe expects.
	if rec != nil && rec.Code == http.StatusInternalServerError && !next.called && strings.Contains(rec.Body.String(), "wasm") {
		first, rest, _ := strings.Cut(strings.TrimSpace(rec.Body.String()), "\n")
		return outcome{Reason: "wasm guest failed handling a request (HTTP 500): " + first, Detail: rest}
	}
	return out
}

// instantiateHost mirrors Traefik's InstantiateHost without plugin settings
// (no forwarded environment, no mounts: those are static configuration).
func instantiateHost(ctx context.Context, rt wazero.Runtime, mod wazero.CompiledModule) (func(context.Context) context.Context, error) {
	if ext := imports.DetectSocketsExtension(mod); ext != nil {
		ctx, sys, err := imports.NewBuilder().WithSocketsExtension("auto", mod).Instantiate(ctx, rt)
		if err != nil {
			return nil, err
		}
		inst, err := wazergo.Instantiate(ctx, rt, wazergo_wasip1.NewHostModule(*ext), wazergo_wasip1.WithWASI(sys))
		if err != nil {
			return nil, fmt.Errorf("wazergo instantiation: %w", err)
		}
		return func(ctx context.Context) context.Context { return wazergo.WithModuleInstance(ctx, inst) }, nil
	}
	if _, err := wazero_wasip1.Instantiate(ctx, rt); err != nil {
		return nil, fmt.Errorf("wazero instantiation: %w", err)
	}
	return func(ctx context.Context) context.Context { return ctx }, nil
}

// wasmLogger keeps the guest's log lines as plugin output. It reports the
// levels enabled as Traefik's default log level (ERROR) does: guests may
// behave differently when debug logging is on.
type wasmLogger struct{ t *tail }

func (wasmLogger) IsEnabled(level api.LogLevel) bool { return level >= api.LogLevelError }

func (l wasmLogger) Log(_ context.Context, level api.LogLevel, msg string) {
	fmt.Fprintf(l.t, "[wasm level %d] %s\n", level, msg)
}

// wrapCtx applies the host module's context to each request, as Traefik's
// wasm newHandler does.
func wrapCtx(h http.Handler, apply func(context.Context) context.Context) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(apply(r.Context())))
	})
}
