// Package probe tries what hostile plugin code would during verification and
// fails with a JSON report of each attempt: "ok" or the error it met.
package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"time"
)

// Config says what to try.
type Config struct {
	// Read are files to read (absolute host paths of secrets).
	Read []string
	// Write are files to create (absolute, ../, relative to the working directory).
	Write []string
	// Dial is a host:port to connect to.
	Dial string
	// Listen is a host:port to listen on for HoldMS milliseconds.
	Listen string
	HoldMS int
	// Busybox is the path of a busybox binary shipped in the plugin, relative
	// to the working directory; Spawn starts `busybox setsid sleep <Spawn>`
	// and `busybox sleep <Spawn>` and leaves them running.
	Busybox string
	Spawn   string
	// Hog runs `busybox dd bs=<Hog>` and waits for it.
	Hog string
	// Native runs the program at Busybox with these arguments (a native
	// program of the plugin's, native/escape.c) and reports its output.
	Native []string
	// Mem reads the plugin's own memory through /proc/self/mem at the
	// address of a known pattern (what would lift the verifier's key).
	Mem bool
}

var pattern = []byte("xtraefik-probe-pattern-0123456789")

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{} }

// New tries everything it was told to and fails with the report.
func New(_ context.Context, _ http.Handler, cfg *Config, _ string) (http.Handler, error) {
	res := map[string]string{}
	try := func(what string, err error) {
		if err != nil {
			res[what] = err.Error()
			return
		}
		res[what] = "ok"
	}
	res["environ"] = fmt.Sprint(os.Environ())
	wd, err := os.Getwd()
	res["cwd"] = wd
	try("getwd", err)
	procs := []string{"/proc/self/environ", "/proc/1/environ", fmt.Sprintf("/proc/%d/environ", os.Getppid())}
	for _, f := range append(procs, cfg.Read...) {
		data, err := os.ReadFile(f)
		try("read "+f, err)
		if err == nil {
			res["content "+f] = string(data)
		}
	}
	if cfg.Mem {
		func() {
			f, err := os.Open("/proc/self/mem")
			if err != nil {
				try("mem", err)
				return
			}
			defer f.Close()
			buf := make([]byte, len(pattern))
			_, err = f.ReadAt(buf, int64(reflect.ValueOf(&pattern[0]).Pointer()))
			if err == nil && string(buf) != string(pattern) {
				err = errors.New("read other bytes than the pattern")
			}
			try("mem", err)
		}()
		_, err := os.ReadFile("/proc/self/maps")
		try("read /proc/self/maps", err)
	}
	for _, f := range cfg.Write {
		try("write "+f, os.WriteFile(f, []byte("written by a plugin under verification\n"), 0o644))
	}
	if cfg.Dial != "" {
		c, err := net.DialTimeout("tcp", cfg.Dial, 2*time.Second)
		if c != nil {
			_ = c.Close()
		}
		try("dial "+cfg.Dial, err)
	}
	if cfg.Listen != "" {
		l, err := net.Listen("tcp", cfg.Listen)
		try("listen "+cfg.Listen, err)
		if err == nil {
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					_, _ = c.Write([]byte("plugin\n"))
					_ = c.Close()
				}
			}()
			time.Sleep(time.Duration(cfg.HoldMS) * time.Millisecond)
			_ = l.Close()
		}
	}
	// Yaegi offers plugins no os/exec, but os.StartProcess.
	start := func(args ...string) (*os.Process, error) {
		return os.StartProcess(cfg.Busybox, append([]string{"busybox"}, args...), &os.ProcAttr{})
	}
	if cfg.Spawn != "" {
		_, err := start("setsid", "sleep", cfg.Spawn)
		try("spawn setsid", err)
		_, err = start("sleep", cfg.Spawn)
		try("spawn", err)
	}
	if cfg.Hog != "" {
		p, err := start("dd", "if=/dev/zero", "of=/dev/null", "bs="+cfg.Hog, "count=1")
		if err == nil {
			var st *os.ProcessState
			if st, err = p.Wait(); err == nil && !st.Success() {
				err = errors.New(st.String())
			}
		}
		try("hog", err)
	}
	if len(cfg.Native) > 0 {
		func() {
			r, w, err := os.Pipe()
			if err != nil {
				try("native run", err)
				return
			}
			defer r.Close()
			p, err := os.StartProcess(cfg.Busybox, append([]string{"native"}, cfg.Native...), &os.ProcAttr{Files: []*os.File{nil, w, w}})
			_ = w.Close()
			if err != nil {
				try("native run", err)
				return
			}
			out, _ := io.ReadAll(r)
			st, err := p.Wait()
			if err == nil && !st.Success() {
				err = errors.New(st.String())
			}
			try("native run", err)
			res["native"] = string(out)
		}()
	}
	data, _ := json.Marshal(res)
	return nil, errors.New("probe:" + string(data))
}
