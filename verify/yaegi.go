package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mitchellh/mapstructure"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"github.com/traefik/yaegi/stdlib/syscall"
	"github.com/traefik/yaegi/stdlib/unsafe"
	"gopkg.in/yaml.v3"
)

// PP mirrors the provider interface Traefik exposes to provider plugins
// (pkg/plugins/providers.go, v2.11 and v3.6.12 alike).
type PP interface {
	Init() error
	Provide(cfgChan chan<- json.Marshaler) error
	Stop() error
}

// _PP is the Yaegi wrapper type for PP, as Traefik declares it.
type _PP struct {
	IValue   any
	WInit    func() error
	WProvide func(cfgChan chan<- json.Marshaler) error
	WStop    func() error
}

func (p _PP) Init() error                                 { return p.WInit() }
func (p _PP) Provide(cfgChan chan<- json.Marshaler) error { return p.WProvide(cfgChan) }
func (p _PP) Stop() error                                 { return p.WStop() }

// ppPkg is the import path the provider wrapper imports PP from. Traefik
// registers PP under its own package path; Yaegi finds the wrapper type by the
// Go package path of the interface, so ours must be the path of this package.
// Plugins never import it themselves: only the wrapper does.
func ppPkg() string { return reflect.TypeOf((*PP)(nil)).Elem().PkgPath() }

func ppSymbols() interp.Exports {
	return interp.Exports{
		ppPkg() + "/" + path.Base(ppPkg()): {
			"PP":  reflect.ValueOf((*PP)(nil)),
			"_PP": reflect.ValueOf((*_PP)(nil)),
		},
	}
}

// failure is a FAIL with a one-line reason and optional detail.
func failure(reason string, err error) outcome {
	o := outcome{Reason: reason}
	var p interp.Panic
	if errors.As(err, &p) {
		// Yaegi recovered a panic of the interpreted code (or of itself).
		o.Reason = fmt.Sprintf("%s: panic: %v", reason, p.Value)
		o.Detail = "interpreter stack:\n" + truncate(string(p.Stack), 4000)
		return o
	}
	if err != nil {
		first, rest, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
		rest = strings.TrimSpace(rest)
		// Multi-error texts ("1 error(s) decoding:\n\n* cannot parse ...")
		// carry their cause on the next line: keep it in the one-line reason.
		if strings.HasSuffix(first, ":") && rest != "" {
			next, more, _ := strings.Cut(rest, "\n")
			first += " " + strings.TrimPrefix(strings.TrimSpace(next), "* ")
			rest = strings.TrimSpace(more)
		}
		o.Reason = reason + ": " + first
		o.Detail = rest
	}
	return o
}

// call invokes an interpreted function, turning a panic into an error.
func call(fn reflect.Value, args []reflect.Value) (res []reflect.Value, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return fn.Call(args), nil
}

// decodeConfig decodes the configuration into the CreateConfig result the
// way Traefik does (pkg/plugins: mapstructure, weakly typed input,
// comma-separated strings to slices).
func decodeConfig(config map[string]any, result any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		Result:           result,
	})
	if err != nil {
		return fmt.Errorf("failed to create configuration decoder: %w", err)
	}
	if err := dec.Decode(config); err != nil {
		return fmt.Errorf("failed to decode configuration: %w", err)
	}
	return nil
}

func parseConfig(s string) (map[string]any, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return m, nil
}

// prepared is an interpreter made before the job arrives: creating it and
// loading the standard library's symbols is about half of what interpreting
// a small plugin costs, and none of it depends on the plugin.
type prepared struct {
	goPath string
	logs   *tail
	i      *interp.Interpreter
}

// prepare makes the interpreter for plugins under goPath; nil when it fails
// (the job then makes its own and reports the error).
func prepare(goPath string) *prepared {
	logs := newTail(16 << 10)
	i, err := baseInterpreter(goPath, logs)
	if err != nil {
		return nil
	}
	return &prepared{goPath: goPath, logs: logs, i: i}
}

// symbolKey is a package's key in Yaegi's symbol tables ("reflect/reflect").
func symbolKey(pkg string) string { return pkg + "/" + path.Base(pkg) }

// guardedSymbols is Yaegi's standard library without memoryFuncs
// (reflect.NewAt, reflect.SliceAt, runtime/debug.WriteHeapDump, …): with
// them, interpreted code reads any memory of the worker — its report key
// included — without importing unsafe.
func guardedSymbols() interp.Exports {
	out := make(interp.Exports, len(stdlib.Symbols))
	for k, v := range stdlib.Symbols {
		out[k] = v
	}
	for pkg, names := range memoryFuncs {
		k := symbolKey(pkg)
		r := make(map[string]reflect.Value, len(stdlib.Symbols[k]))
		for name, v := range stdlib.Symbols[k] {
			if !slices.Contains(names, name) {
				r[name] = v
			}
		}
		out[k] = r
	}
	return out
}

// rawMemorySymbols are the functions guardedSymbols leaves out.
func rawMemorySymbols() interp.Exports {
	out := interp.Exports{}
	for pkg, names := range memoryFuncs {
		k := symbolKey(pkg)
		m := map[string]reflect.Value{}
		for _, name := range names {
			if v, ok := stdlib.Symbols[k][name]; ok {
				m[name] = v
			}
		}
		out[k] = m
	}
	return out
}

// baseInterpreter builds the interpreter as Traefik's newInterpreter does
// (pkg/plugins/middlewareyaegi.go, v3.6.12), without the restricted symbols.
func baseInterpreter(goPath string, logs *tail) (*interp.Interpreter, error) {
	i := interp.New(interp.Options{
		GoPath: goPath,
		Env:    os.Environ(),
		Stdout: logs,
		Stderr: logs,
	})
	if err := i.Use(guardedSymbols()); err != nil {
		return nil, fmt.Errorf("failed to load symbols: %w", err)
	}
	if err := i.Use(ppSymbols()); err != nil {
		return nil, fmt.Errorf("failed to load provider symbols: %w", err)
	}
	return i, nil
}

// newInterpreter returns the interpreter for j: the prepared one when it
// fits, else a new one; unsafe and syscall symbols added when allowed.
func newInterpreter(j *job, pre *prepared, logs *tail) (*interp.Interpreter, error) {
	var i *interp.Interpreter
	if pre != nil && pre.goPath == j.GoPath && pre.logs == logs {
		i = pre.i
	} else {
		var err error
		if i, err = baseInterpreter(j.GoPath, logs); err != nil {
			return nil, err
		}
	}
	if j.RawMemory {
		if err := i.Use(rawMemorySymbols()); err != nil {
			return nil, fmt.Errorf("failed to load memory symbols: %w", err)
		}
	}
	if j.UseUnsafe {
		if err := i.Use(unsafe.Symbols); err != nil {
			return nil, fmt.Errorf("failed to load unsafe symbols: %w", err)
		}
		if err := i.Use(syscall.Symbols); err != nil {
			return nil, fmt.Errorf("failed to load syscall symbols: %w", err)
		}
	}
	return i, nil
}

func eval(i *interp.Interpreter, src string) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			// Yaegi itself panicked (it does on some valid Go it cannot handle).
			err = interp.Panic{Value: r, Stack: debug.Stack()}
		}
	}()
	return i.Eval(src)
}

// checkYaegi interprets the plugin of j; compile hears whether its import
// compiled, as soon as that is known. Yaegi runs a package's variable
// initialisers and init functions as soon as that package has compiled,
// before the packages importing it compile: plugin code may run before a
// compile error further up is found.
func checkYaegi(ctx context.Context, j *job, pre *prepared, phase func(string), compile func(compiled), logs *tail) outcome {
	config, err := parseConfig(j.Config)
	if err != nil {
		return failure("invalid configuration", err)
	}
	phase("interpreter")
	i, err := newInterpreter(j, pre, logs)
	if err != nil {
		return failure("failed to create Yaegi interpreter", err)
	}
	phase("import")
	if _, err := eval(i, fmt.Sprintf(`import %q`, j.Import)); err != nil {
		o := failure(fmt.Sprintf("failed to import plugin code %q", j.Import), err)
		compile(compiled{Reason: o.Reason, Detail: o.Detail})
		return o
	}
	compile(compiled{OK: true})
	if j.Type == "provider" {
		return checkProvider(ctx, i, j, config, phase)
	}
	return checkMiddleware(ctx, i, j, config, phase)
}

func checkMiddleware(ctx context.Context, i *interp.Interpreter, j *job, config map[string]any, phase func(string)) outcome {
	phase("eval New/CreateConfig")
	fnNew, err := eval(i, j.BasePkg+`.New`)
	if err != nil {
		return failure("failed to eval New", err)
	}
	fnCreateConfig, err := eval(i, j.BasePkg+`.CreateConfig`)
	if err != nil {
		return failure("failed to eval CreateConfig", err)
	}
	if fnNew.Kind() != reflect.Func || fnCreateConfig.Kind() != reflect.Func {
		return outcome{Reason: fmt.Sprintf("%s.New and %s.CreateConfig must be functions", j.BasePkg, j.BasePkg)}
	}

	phase("CreateConfig")
	results, err := call(fnCreateConfig, nil)
	if err != nil {
		return failure("CreateConfig failed", err)
	}
	if len(results) != 1 {
		return outcome{Reason: fmt.Sprintf("invalid number of return for the CreateConfig function: %d", len(results))}
	}
	vConfig := results[0]
	// Traefik decodes only a non-empty configuration.
	if len(config) > 0 {
		phase("decode configuration")
		if err := decodeConfig(config, vConfig.Interface()); err != nil {
			return failure("invalid configuration", err)
		}
	}

	phase("New")
	next := &recorder{}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if t := fnNew.Type(); t.NumIn() != 4 || t.NumOut() < 1 {
		return outcome{Reason: fmt.Sprintf("New has signature %s, want func(context.Context, http.Handler, *Config, string) (http.Handler, error)", t)}
	}
	results, err = call(fnNew, []reflect.Value{reflect.ValueOf(hctx), reflect.ValueOf(http.Handler(next)), vConfig, reflect.ValueOf(j.Name)})
	if err != nil {
		return failure("New failed", err)
	}
	if len(results) > 1 && results[1].Interface() != nil {
		e, ok := results[1].Interface().(error)
		if !ok {
			return outcome{Reason: fmt.Sprintf("invalid error type: %T", results[1].Interface())}
		}
		return failure("New returned an error", e)
	}
	h, ok := results[0].Interface().(http.Handler)
	if !ok || h == nil {
		return outcome{Reason: fmt.Sprintf("invalid handler type: %T", results[0].Interface())}
	}

	phase("request")
	out, _ := serve(ctx, h, next, j)
	return out
}

func checkProvider(ctx context.Context, i *interp.Interpreter, j *job, config map[string]any, phase func(string)) outcome {
	// pkg/plugins/providers.go newProvider (v3.6.12).
	phase("CreateConfig")
	vConfig, err := eval(i, j.BasePkg+`.CreateConfig()`)
	if err != nil {
		return failure("failed to eval CreateConfig", err)
	}
	phase("decode configuration")
	if err := decodeConfig(config, vConfig.Interface()); err != nil {
		return failure("invalid configuration", err)
	}
	phase("wrapper")
	_, err = eval(i, `package wrapper

import (
	"context"

	`+j.BasePkg+` "`+j.Import+`"
	plugins "`+ppPkg()+`"
)

func NewWrapper(ctx context.Context, config *`+j.BasePkg+`.Config, name string) (plugins.PP, error) {
	p, err := `+j.BasePkg+`.New(ctx, config, name)
	var pv plugins.PP = p
	return pv, err
}
`)
	if err != nil {
		return failure("failed to eval wrapper", err)
	}
	fnNew, err := eval(i, "wrapper.NewWrapper")
	if err != nil {
		return failure("failed to eval New", err)
	}
	phase("New")
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results, err := call(fnNew, []reflect.Value{reflect.ValueOf(pctx), vConfig, reflect.ValueOf("plugin-" + j.Name)})
	if err != nil {
		return failure("New failed", err)
	}
	if len(results) > 1 && results[1].Interface() != nil {
		e, _ := results[1].Interface().(error)
		return failure("New returned an error", e)
	}
	pp, ok := results[0].Interface().(PP)
	if !ok {
		return outcome{Reason: fmt.Sprintf("invalid provider type: %T", results[0].Interface())}
	}

	phase("Init")
	if err := guard(pp.Init); err != nil {
		return failure("Init failed", err)
	}

	phase("Provide")
	cfgChan := make(chan json.Marshaler)
	provideErr := make(chan error, 1)
	go func() { provideErr <- guard(func() error { return pp.Provide(cfgChan) }) }()
	wait := time.Until(j.Deadline)
	if wait <= 0 {
		wait = time.Second
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var got json.Marshaler
	for got == nil {
		select {
		case m := <-cfgChan:
			got = m
		case err := <-provideErr:
			if err != nil {
				return failure("Provide returned an error", err)
			}
			provideErr = nil // Provide returned; keep waiting for its goroutines
		case <-timer.C:
			return outcome{Reason: fmt.Sprintf("Provide delivered no configuration within %s", wait.Round(time.Second))}
		}
	}
	var note string
	if err := guard(func() error {
		data, err := got.MarshalJSON()
		if err != nil {
			return fmt.Errorf("failed to marshal configuration: %w", err)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			return fmt.Errorf("failed to unmarshal configuration: %w", err)
		}
		keys := make([]string, 0, len(top))
		for k := range top {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		note = fmt.Sprintf("provider delivered a configuration (%d bytes; sections: %s)", len(data), strings.Join(keys, ", "))
		return nil
	}); err != nil {
		return failure("invalid configuration from Provide", err)
	}

	phase("Stop")
	if err := guard(pp.Stop); err != nil {
		return failure("Stop failed", err)
	}
	return outcome{OK: true, Notes: []string{note}}
}

// guard runs f, turning a panic into an error.
func guard(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return f()
}
