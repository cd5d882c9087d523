// Package xtraefik holds the source xtraefik builds its verification workers
// from. A worker for another Yaegi version than the one xtraefik links is the
// verify package compiled again with that Yaegi: these are the files that
// build needs, embedded so that a plain install can build the worker itself
// (verify/provision). Test files are left out when written.
package xtraefik

import "embed"

// WorkerSource is go.mod, go.sum and the packages the verify package needs
// (a package verify starts importing must be added here, or worker builds fail).
//
//go:embed go.mod go.sum worker_source.go
//go:embed verify/*.go verify/interpreters/*.go verify/provision/*.go verify/provision/worker.sum
//go:embed internal/manifest/*.go internal/fileset/*.go internal/sandbox/*.go internal/probe/*.go internal/plugin/*.go internal/yamlcheck/*.go internal/place/*.go internal/private/*.go internal/buildid/*.go
var WorkerSource embed.FS
