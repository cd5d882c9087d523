package interpreters

//go:generate go run ./internal/genstdlib -o stdlib_gen.go v0.15.0 v0.15.1 v0.16.1

// Packages is what one Yaegi version offers a plugin to import.
type Packages struct {
	// Std are the standard-library packages of its stdlib.Symbols.
	Std []string
	// Restricted are unsafe and syscall, loaded only with useUnsafe.
	Restricted []string
}

// Stdlib returns what Yaegi version v ("v0.15.1") offers plugins, from lists
// generated out of the real modules; false for a version xtraefik has no list
// of.
func Stdlib(v string) (Packages, bool) {
	std, restricted, ok := generatedStdlib(v)
	return Packages{Std: std, Restricted: restricted}, ok
}
