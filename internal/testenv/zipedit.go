package testenv

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
)

// rewriteZip rewrites the zip file at path with the entry name holding
// content instead (added when absent).
func rewriteZip(path, name string, content []byte) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	found := false
	for _, f := range zr.File {
		w, err := zw.Create(f.Name)
		if err != nil {
			zr.Close()
			return err
		}
		if f.Name == name {
			found = true
			_, err = w.Write(content)
		} else {
			var rc io.ReadCloser
			if rc, err = f.Open(); err == nil {
				_, err = io.Copy(w, rc)
				rc.Close()
			}
		}
		if err != nil {
			zr.Close()
			return err
		}
	}
	zr.Close()
	if !found {
		w, err := zw.Create(name)
		if err != nil {
			return err
		}
		if _, err := w.Write(content); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
