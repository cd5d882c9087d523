package modproxy

import (
	"errors"
	"fmt"

	"golang.org/x/mod/modfile"
)

// ErrModulePath marks a go.mod whose module line names another module
// than the one that was asked for.
var ErrModulePath = errors.New("module declares another path")

// CheckModulePath refuses a go.mod that does not declare the module it was
// fetched as, as the go command does ("parsing go.mod: module declares its
// path as: X but was required as: Y", cmd/go/internal/modload, Go 1.26):
// the module line must be required, or replacedBy when the module was
// fetched as a replacement ("" otherwise). Without the check, a proxy or a
// repository could hand over one module's code under another's name.
func CheckModulePath(goMod []byte, required, replacedBy string) error {
	f, err := modfile.ParseLax("go.mod", goMod, nil)
	if err != nil {
		return fmt.Errorf("parsing go.mod: %w", err)
	}
	return checkDeclared(f, required, replacedBy)
}

// checkDeclared is CheckModulePath for a parsed go.mod.
func checkDeclared(f *modfile.File, required, replacedBy string) error {
	declared := ""
	if f.Module != nil {
		declared = f.Module.Mod.Path
	}
	if declared != "" && (declared == required || declared == replacedBy) {
		return nil
	}
	as := required
	if replacedBy != "" {
		as += " (replaced by " + replacedBy + ")"
	}
	if declared == "" {
		return modulePathError("parsing go.mod: it has no module line, but was required as: " + as)
	}
	return modulePathError("parsing go.mod: module declares its path as: " + declared + " but was required as: " + as)
}

// modulePathError is an ErrModulePath error in the go command's words.
type modulePathError string

func (e modulePathError) Error() string { return string(e) }
func (e modulePathError) Unwrap() error { return ErrModulePath }
