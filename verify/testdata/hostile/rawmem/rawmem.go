// Package rawmem calls reflect.NewAt: harmless here, but the same call on a
// crafted slice header reads and writes any address of the process.
package rawmem

import (
	"context"
	"errors"
	"net/http"
	"reflect"
)

var word = 42

// Config is empty.
type Config struct{}

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{} }

// New reads word back through reflect.NewAt.
func New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	p := reflect.ValueOf(&word).UnsafePointer()
	if reflect.NewAt(reflect.TypeOf(0), p).Elem().Int() != 42 {
		return nil, errors.New("reflect.NewAt read the wrong word")
	}
	return next, nil
}
