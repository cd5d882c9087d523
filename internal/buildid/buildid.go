// Package buildid names the running xtraefik build for the caches keyed by
// it.
package buildid

import (
	"bytes"
	"debug/elf"
	"debug/macho"
	"encoding/binary"
	"fmt"
	"os"
	"runtime/debug"
)

// Self names this xtraefik build, so that what a cache keeps from one
// build (a verdict, a rendered layer) is never taken for another's: the
// module version and commit when the binary has them, and the Go build ID
// of the executable, which changes with any change to what was compiled
// (a package built from a tarball, without version control, or a local
// replace of xtraefik in another program included). Without a build ID,
// the executable's size and time stand in.
func Self() string {
	id := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		id = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				id += "+" + s.Value
			}
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return id
	}
	if b := goBuildID(exe); b != "" {
		return id + "+build:" + b
	}
	if info, err := os.Stat(exe); err == nil {
		id += fmt.Sprintf("+exe:%d:%d", info.Size(), info.ModTime().UnixNano())
	}
	return id
}

// goBuildID reads the build ID the go command records in every
// executable it links (`go tool buildid` prints the same): an ELF note, or
// the start of a Mach-O text section.
func goBuildID(exe string) string {
	if f, err := elf.Open(exe); err == nil {
		defer f.Close()
		if sec := f.Section(".note.go.buildid"); sec != nil {
			if data, err := sec.Data(); err == nil && len(data) > 16 {
				// namesz, descsz, type, then "Go\x00\x00" and the ID.
				descsz := binary.LittleEndian.Uint32(data[4:8])
				if string(data[12:16]) == "Go\x00\x00" && int(16+descsz) <= len(data) {
					return string(data[16 : 16+descsz])
				}
			}
		}
		return ""
	}
	f, err := macho.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	sec := f.Section("__text")
	if sec == nil {
		return ""
	}
	head := make([]byte, 1024)
	n, _ := sec.ReadAt(head, 0)
	return quotedID(head[:n])
}

// quotedID finds `\xff Go build ID: "<id>"\n \xff` in b.
func quotedID(b []byte) string {
	const prefix, suffix = "\xff Go build ID: \"", "\"\n \xff"
	i := bytes.Index(b, []byte(prefix))
	if i < 0 {
		return ""
	}
	rest := b[i+len(prefix):]
	j := bytes.Index(rest, []byte(suffix))
	if j < 0 || j > 256 {
		return ""
	}
	return string(rest[:j])
}
