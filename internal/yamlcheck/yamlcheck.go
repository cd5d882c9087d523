// Package yamlcheck checks a parsed YAML document against the Go type it is
// about to be decoded into, in linear time and within limits, so that
// yaml.v3's decoder only meets documents it decodes quickly, and so that
// mistakes are reported in the words of the file (key paths, "a mapping",
// "a list") rather than Go's ("cannot unmarshal !!seq into
// map[string]interface {}").
//
// yaml.v3 finds duplicate keys by comparing every key of a mapping with
// every other, so a 1.2 MB recipe with 100k keys took a minute to decode;
// aliases are expanded by the decoder, so a few lines can stand for
// billions of values ("billion laughs").
package yamlcheck

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
	"gopkg.in/yaml.v3"
)

// Limits bound one kind of document.
type Limits struct {
	// Kind names the document in messages ("recipe").
	Kind     string
	MaxBytes int64
	// MaxNodes bounds the values of the document, counting each use of an
	// alias as a copy of its anchor.
	MaxNodes int
	// MaxKeys bounds the keys of one mapping.
	MaxKeys int
	// UnknownFields makes a key that matches no field of a struct an error
	// (with the closest field as a suggestion); else it is ignored.
	UnknownFields bool
}

// ReadFile reads at most one byte more than lim.MaxBytes of path: enough for
// CheckSize to refuse a larger file without reading all of it.
func ReadFile(path string, lim Limits) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, lim.MaxBytes+1))
}

// CheckSize refuses data larger than lim.MaxBytes.
func CheckSize(name string, data []byte, lim Limits) error {
	if int64(len(data)) > lim.MaxBytes {
		return fmt.Errorf("%s: the file is larger than %s, the limit for a %s", name, size(lim.MaxBytes), lim.Kind)
	}
	return nil
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

var reLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Error turns yaml.v3's messages into one "file:line: message" per problem.
func Error(name string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := err.Error()
		if m := reLine.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("%s:%s: %s", name, m[1], m[2])
		}
		return fmt.Errorf("%s: %s", name, strings.TrimPrefix(msg, "yaml: "))
	}
	var lines []string
	for _, e := range te.Errors {
		if m := reLine.FindStringSubmatch(e); m != nil {
			lines = append(lines, fmt.Sprintf("%s:%s: %s", name, m[1], m[2]))
			continue
		}
		lines = append(lines, name+": "+e)
	}
	return errors.New(strings.Join(lines, "\n"))
}

// Check checks the document root against t, the type it will be decoded
// into: the limits, duplicate keys, the shape of every value (mapping, list,
// scalar of the right type) and, with lim.UnknownFields, unknown fields.
// Each problem is one line, "name:line: key.path: message" ("line N: ..."
// when name is empty); up to ten are reported at once.
func Check(name string, root *yaml.Node, t reflect.Type, lim Limits) error {
	c := &checker{file: name, lim: lim, expanding: map[*yaml.Node]bool{}}
	if err := c.walk(root, t, ""); err != nil {
		return err
	}
	if len(c.errs) > 0 {
		return errors.New(strings.Join(c.errs, "\n"))
	}
	return nil
}

// maxReported bounds the per-field problems listed at once.
const maxReported = 10

type checker struct {
	file      string
	lim       Limits
	nodes     int
	expanding map[*yaml.Node]bool // anchored values being walked, to refuse cycles
	errs      []string
}

// fail records a problem with a value; walking goes on so that every
// misspelt or mistyped field is listed at once.
func (c *checker) fail(n *yaml.Node, path, format string, args ...any) {
	if len(c.errs) == maxReported {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	c.errs = append(c.errs, c.at(n)+msg)
}

// abort reports a bound exceeded: walking stops there.
func (c *checker) abort(n *yaml.Node, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return errors.New(c.at(n) + msg)
}

// at is the "file:line: " prefix of a message about n.
func (c *checker) at(n *yaml.Node) string {
	if c.file == "" {
		return fmt.Sprintf("line %d: ", n.Line)
	}
	return fmt.Sprintf("%s:%d: ", c.file, n.Line)
}

// walk checks n as a value of type t (nil: any value) found at path.
func (c *checker) walk(n *yaml.Node, t reflect.Type, path string) error {
	c.nodes++
	if c.nodes > c.lim.MaxNodes {
		return c.abort(n, path, "more than %d YAML values (aliases count once per use): a %s may have at most %d", c.lim.MaxNodes, c.lim.Kind, c.lim.MaxNodes)
	}
	if n.Kind == yaml.AliasNode {
		if c.expanding[n.Alias] {
			return c.abort(n, path, "alias *%s refers to the value that contains it", n.Value)
		}
		return c.walk(n.Alias, t, path)
	}
	if n.Anchor != "" {
		c.expanding[n] = true
		defer delete(c.expanding, n)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && t.Kind() == reflect.Interface {
		t = nil // any value
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // the zero value, whatever the type
	}
	want := expected(t)
	switch n.Kind {
	case yaml.MappingNode:
		if want != "" && want != "a mapping" {
			c.fail(n, path, "expected %s, got a mapping", want)
			return nil
		}
		return c.mapping(n, t, path)
	case yaml.SequenceNode:
		if want != "" && want != "a list" {
			c.fail(n, path, "expected %s, got a list", want)
			return nil
		}
		var elem reflect.Type
		if t != nil {
			elem = t.Elem()
		}
		for i, e := range n.Content {
			if err := c.walk(e, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		switch {
		case want == "a mapping" || want == "a list":
			c.fail(n, path, "expected %s, got %s", want, describe(n))
		case t != nil && t.Kind() != reflect.String:
			// Decoding one scalar is what the decoder will do: same verdict.
			if err := n.Decode(reflect.New(t).Interface()); err != nil {
				c.fail(n, path, "expected %s, got %s", want, describe(n))
			}
		}
	}
	return nil
}

// expected says what a value of type t looks like in YAML; "" for any value.
func expected(t reflect.Type) string {
	switch {
	case t == nil:
		return ""
	case t == reflect.TypeFor[time.Time]():
		return "a timestamp (2006-01-02T15:04:05Z)"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return "a mapping"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a string"
}

// mapping checks the keys of n (linearly: one map of the keys seen) and each
// value against the field or element type of t.
func (c *checker) mapping(n *yaml.Node, t reflect.Type, path string) error {
	if len(n.Content)/2 > c.lim.MaxKeys {
		return c.abort(n, path, "%d keys in one mapping: a %s may have at most %d", len(n.Content)/2, c.lim.Kind, c.lim.MaxKeys)
	}
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = yamlFields(t)
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := c.walk(k, nil, path); err != nil {
			return err
		}
		if k.Kind != yaml.ScalarNode {
			c.fail(k, path, "a key must be a plain value, not %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			c.fail(k, path, "key %q is already defined at line %d", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if k.ShortTag() == "!!merge" {
			if err := c.merge(v, t, path); err != nil {
				return err
			}
			continue
		}
		sub := k.Value
		if path != "" {
			sub = path + "." + k.Value
		}
		var vt reflect.Type
		switch {
		case fields != nil:
			ft, ok := fields[k.Value]
			if !ok && !c.lim.UnknownFields {
				continue // ignored by the decoder too
			}
			if !ok {
				msg := fmt.Sprintf("unknown field %q", k.Value)
				if s := suggest(k.Value, keys(fields)); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				c.fail(k, "", "%s", msg) // the line and the suggestion say where
				continue
			}
			vt = ft
		case t != nil:
			vt = t.Elem()
		}
		if err := c.walk(v, vt, sub); err != nil {
			return err
		}
	}
	return nil
}

// merge checks the value of a merge key ("<<: *anchor"): a mapping, or a
// list of mappings, whose keys join the mapping of type t at path.
func (c *checker) merge(v *yaml.Node, t reflect.Type, path string) error {
	if v.Kind != yaml.SequenceNode {
		return c.walk(v, t, path)
	}
	c.nodes++
	for _, e := range v.Content {
		if err := c.walk(e, t, path); err != nil {
			return err
		}
	}
	return nil
}

// yamlFields maps the YAML keys of struct type t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			// The embedded struct's keys sit beside the outer ones, as
			// yaml.v3 decodes them.
			maps.Copy(out, yamlFields(f.Type))
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// keys lists the fields of m in a fixed order, so that a suggestion between
// equally close fields is always the same.
func keys(m map[string]reflect.Type) []string {
	return slices.Sorted(maps.Keys(m))
}

// describe says what kind of value n is, in the user's words.
func describe(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return kindName(n)
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return "a number (" + n.Value + ")"
	case "!!bool":
		return "a boolean (" + n.Value + ")"
	case "!!timestamp":
		return "a timestamp"
	case "!!binary":
		return "binary data"
	}
	return "a string (" + strconv.Quote(n.Value) + ")"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a value"
}

// suggest returns the known field closest to s, if it is close enough to be a typo.
func suggest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := levenshtein.ComputeDistance(strings.ToLower(s), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}
