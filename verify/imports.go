package verify

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/traefik/yaegi/stdlib"
	"github.com/traefik/yaegi/stdlib/syscall"
	"github.com/traefik/yaegi/stdlib/unsafe"
)

// importGraph is what the static import walk learned about one plugin.
type importGraph struct {
	// missing are non-stdlib packages found neither in the plugin nor in a vendor/ directory.
	missing []string
	// restricted are the restricted packages (unsafe, syscall) imported anywhere.
	restricted []string
	// unavailable are standard library packages Yaegi does not provide (cgo, plugin...).
	unavailable []string
	// absent is set when a package inside the plugin's own module path has no Go files.
	absent []string
	// nested maps an imported package to the nested module (own go.mod) holding it.
	nested map[string]string
	// fromGOPATH are packages found in another plugin of the same
	// plugins-local tree, where Yaegi's GOPATH lookup finds them too.
	fromGOPATH []string
	// rawMemory are packages calling a memoryFuncs function (reflect.NewAt,
	// runtime/debug.WriteHeapDump, …), which reach any memory of the
	// process without importing unsafe; rawMemoryCalls the functions.
	rawMemory      []string
	rawMemoryCalls []string
	// packages counts the packages walked.
	packages int
}

// symbolPackages lists the import paths of a Yaegi symbol table ("net/http/http" -> "net/http").
func symbolPackages(tables ...map[string]map[string]reflect.Value) map[string]bool {
	out := map[string]bool{}
	for _, t := range tables {
		for k := range t {
			if p := path.Dir(k); p != "." && !strings.HasPrefix(p, "github.com/traefik/yaegi") {
				out[p] = true
			}
		}
	}
	return out
}

// packageSet is what an interpreter offers a plugin to import: the standard
// library packages in Yaegi's stdlib.Symbols, and the restricted ones only
// useUnsafe unlocks. It depends on the Yaegi version, so it comes from the
// worker that will interpret the plugin.
type packageSet struct {
	std, restricted map[string]bool
}

// linkedPackages is the packageSet of the Yaegi linked into this binary.
func linkedPackages() packageSet {
	return packageSet{symbolPackages(stdlib.Symbols), symbolPackages(unsafe.Symbols, syscall.Symbols)}
}

// buildContext is the one Yaegi evaluates build constraints with inside a
// Traefik container: linux, the host architecture, no cgo.
func buildContext() build.Context {
	ctx := build.Default
	ctx.GOOS = "linux"
	ctx.GOARCH = runtime.GOARCH
	ctx.CgoEnabled = false
	return ctx
}

// walkImports follows the imports of the non-test Go files of importPath inside
// the plugin laid out at root (plugins-local/src/<module>), the way Yaegi's
// GOPATH resolution finds them: the nearest vendor/ directory above the
// importing package first, then the plugin itself. Anything else that is not in
// Yaegi's standard library (pkgs) is missing, whatever go.mod says.
func walkImports(root, module, importPath string, pkgs packageSet) (*importGraph, error) {
	std, restricted := pkgs.std, pkgs.restricted
	ctx := buildContext()
	lists := &goFileLists{ctx: &ctx, lists: map[string][]string{}}
	g := &importGraph{nested: map[string]string{}}
	seen := map[string]bool{}
	missing, restr, unavail := map[string]bool{}, map[string]bool{}, map[string]bool{}
	gopath := map[string]bool{}
	// srcRoot is plugins-local/src: root is srcRoot/<module>.
	srcRoot := filepath.Clean(strings.TrimSuffix(filepath.Clean(root), filepath.FromSlash(module)))

	// dirOf returns the directory (relative to root, slash-separated) holding
	// import p seen from package directory from, or "" when it is not there.
	dirOf := func(p, from string) string {
		for d := from; ; d = path.Dir(d) {
			cand := path.Join(d, "vendor", p)
			if d == "." {
				cand = path.Join("vendor", p)
			}
			if len(lists.of(filepath.Join(root, filepath.FromSlash(cand)))) > 0 {
				return cand
			}
			if d == "." {
				break
			}
		}
		if p == module {
			return "."
		}
		if rel, ok := strings.CutPrefix(p, module+"/"); ok {
			return rel
		}
		return ""
	}

	type item struct{ pkg, dir string }
	var queue []item
	first := dirOf(importPath, ".")
	if first == "" {
		return nil, fmt.Errorf("import %q is not inside module %q", importPath, module)
	}
	queue = append(queue, item{importPath, first})
	seen[importPath] = true
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		abs := filepath.Join(root, filepath.FromSlash(it.dir))
		files := lists.of(abs)
		if len(files) == 0 {
			g.absent = append(g.absent, it.pkg)
			continue
		}
		if mod := nestedModule(root, it.dir); mod != "" {
			g.nested[it.pkg] = mod
		}
		g.packages++
		imports, err := packageImports(files, srcRoot)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(imports, func(p string) bool { return memoryFuncs[p] != nil }) {
			calls, err := usesRawMemory(files, srcRoot)
			if err != nil {
				return nil, err
			}
			if len(calls) > 0 {
				g.rawMemory = append(g.rawMemory, it.pkg)
				for _, c := range calls {
					if !slices.Contains(g.rawMemoryCalls, c) {
						g.rawMemoryCalls = append(g.rawMemoryCalls, c)
					}
				}
				sort.Strings(g.rawMemoryCalls)
			}
		}
		for _, imp := range imports {
			switch {
			case restricted[imp]:
				restr[imp] = true
				continue
			case imp == "C":
				unavail["C (cgo)"] = true
				continue
			}
			if seen[imp] {
				continue
			}
			d := dirOf(imp, it.dir)
			if d == "" {
				switch {
				case std[imp]:
				case isStdPath(imp):
					unavail[imp] = true
				case len(lists.of(filepath.Join(srcRoot, filepath.FromSlash(imp)))) > 0:
					// Another plugin of the image provides it; that plugin is
					// verified on its own, so the walk stops here.
					gopath[imp] = true
				default:
					missing[imp] = true
				}
				continue
			}
			seen[imp] = true
			queue = append(queue, item{imp, d})
		}
	}
	g.missing = sortedKeys(missing)
	g.fromGOPATH = sortedKeys(gopath)
	g.restricted = sortedKeys(restr)
	g.unavailable = sortedKeys(unavail)
	sort.Strings(g.absent)
	return g, nil
}

// isStdPath tells a standard library path (no dot in the first element) from a
// third-party one.
func isStdPath(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

// nestedModule returns the directory (relative to root) of the closest go.mod
// strictly below the plugin root that contains dir, or "".
func nestedModule(root, dir string) string {
	if dir == "." {
		return ""
	}
	for d := dir; d != "."; d = path.Dir(d) {
		if strings.HasPrefix(d, "vendor/") || d == "vendor" {
			return ""
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(d), "go.mod")); err == nil {
			return d
		}
	}
	return ""
}

// goFiles lists the files of dir Yaegi would load: .go, not tests, not
// starting with '_' or '.', matching the build context.
func goFiles(ctx *build.Context, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") ||
			strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") {
			continue
		}
		if ok, err := ctx.MatchFile(dir, name); err != nil || !ok {
			continue
		}
		out = append(out, filepath.Join(dir, name))
	}
	return out
}

// goFileLists remembers goFiles per directory for one walk: the walk asks
// about the same directories again and again (every import looks for its
// vendor/ candidates, then the package is listed and parsed), and each
// listing opens every file to read its build constraints. The tree does not
// change during the walk: no plugin code has run on it yet, and workers see
// it read-only.
type goFileLists struct {
	ctx   *build.Context
	lists map[string][]string
}

func (g *goFileLists) of(dir string) []string {
	if l, ok := g.lists[dir]; ok {
		return l
	}
	l := goFiles(g.ctx, dir)
	g.lists[dir] = l
	return l
}

// imageName names file f of the tree under srcRoot as messages do: where the
// image holds it (plugins-local/src/...), as the worker names files too,
// not in the temporary tree.
func imageName(srcRoot, f string) string {
	rel, err := filepath.Rel(srcRoot, f)
	if err != nil {
		return f
	}
	return "plugins-local/src/" + filepath.ToSlash(rel)
}

// packageImports parses only the import blocks of a package's files (goFiles).
func packageImports(files []string, srcRoot string) ([]string, error) {
	fset := token.NewFileSet()
	set := map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		// The parser's message starts with the file name and position.
		af, err := parser.ParseFile(fset, imageName(srcRoot, f), src, parser.ImportsOnly)
		if err != nil {
			return nil, err
		}
		for _, is := range af.Imports {
			p, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: bad import %s", fset.Position(is.Path.Pos()), is.Path.Value)
			}
			set[p] = true
		}
	}
	return sortedKeys(set), nil
}

// memoryFuncs are the standard library functions that expose the memory of
// the worker, its report key included, to code without unsafe; the worker's
// interpreter does not offer them (guardedSymbols) unless the recipe trusts
// plugins with any memory (allowUnsafe):
//   - reflect.NewAt and reflect.SliceAt make a Value of any address;
//   - runtime/debug.WriteHeapDump writes the whole heap to a file the code
//     can read back, and SetCrashOutput (Go 1.23+) sends a crash's dump of
//     every goroutine to such a file.
//
// Left in: runtime.Stack and runtime/pprof's goroutine profile (stacks and
// argument words, not memory contents), heap and CPU profiles (sizes and
// stacks); /proc/self/mem and /proc/self/maps are the sandbox's to deny.
var memoryFuncs = map[string][]string{
	"reflect":       {"NewAt", "SliceAt"},
	"runtime/debug": {"WriteHeapDump", "SetCrashOutput"},
}

// usesRawMemory returns the memoryFuncs a package's files (goFiles) call
// ("reflect.NewAt"); only files that mention one are parsed whole. A dot
// import of such a package counts as calling all of its.
func usesRawMemory(files []string, srcRoot string) ([]string, error) {
	var calls []string
	add := func(c string) {
		if !slices.Contains(calls, c) {
			calls = append(calls, c)
		}
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		mentions := false
		for _, names := range memoryFuncs {
			for _, n := range names {
				mentions = mentions || bytes.Contains(src, []byte(n))
			}
		}
		if !mentions {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), imageName(srcRoot, f), src, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		local := map[string]string{} // name in the file -> import path
		for _, is := range af.Imports {
			p, _ := strconv.Unquote(is.Path.Value)
			if memoryFuncs[p] == nil {
				continue
			}
			name := path.Base(p)
			if is.Name != nil {
				name = is.Name.Name
			}
			if name == "." {
				for _, n := range memoryFuncs[p] {
					add(p + "." + n)
				}
				continue
			}
			local[name] = p
		}
		ast.Inspect(af, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && local[id.Name] != "" && slices.Contains(memoryFuncs[local[id.Name]], sel.Sel.Name) {
				add(local[id.Name] + "." + sel.Sel.Name)
			}
			return true
		})
	}
	sort.Strings(calls)
	return calls, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
