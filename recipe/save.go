package recipe

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Marshal renders the recipe as a recipe file.
func (r *Recipe) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode recipe: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode recipe: %w", err)
	}
	return buf.Bytes(), nil
}

// SaveAs renders r as a recipe file at file and l (its lock, nil for none)
// as that file's lock. A directory plugin's path is rewritten relative to
// file's directory, in the lock too, so that the saved recipe names the
// same directories and its lock matches it.
func SaveAs(r *Recipe, l *Lock, file string) (recipeData, lockData []byte, err error) {
	saved := *r
	saved.Path = file
	saved.Plugins = maps.Clone(r.Plugins)
	paths := map[string]string{}
	for alias, p := range saved.Plugins {
		if p == nil || p.Source() != SourcePath {
			continue
		}
		rel, err := relativePath(r.Dir(p), filepath.Dir(file))
		if err != nil {
			return nil, nil, fmt.Errorf("plugin %s: %w", alias, err)
		}
		cp := *p
		cp.Path = rel
		saved.Plugins[alias], paths[alias] = &cp, rel
	}
	if recipeData, err = saved.Marshal(); err != nil {
		return nil, nil, err
	}
	if l == nil {
		return recipeData, nil, nil
	}
	lc := *l
	lc.Plugins = append([]PluginLock(nil), l.Plugins...)
	for i, pl := range lc.Plugins {
		if p, ok := paths[pl.Alias]; ok && pl.Path != "" {
			lc.Plugins[i].Path = p
		}
	}
	if lockData, err = lc.Marshal(); err != nil {
		return nil, nil, fmt.Errorf("encode lock: %w", err)
	}
	return recipeData, lockData, nil
}

// relativePath is dir as a recipe in base writes it: ./sub, ../other, or
// absolute when no relative path leads there.
func relativePath(dir, base string) (string, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	absBase, err := filepath.Abs(base)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absBase, absDir)
	if err != nil {
		return absDir, nil
	}
	if rel == "." || strings.HasPrefix(rel, "..") {
		return rel, nil
	}
	return "." + string(filepath.Separator) + rel, nil
}
