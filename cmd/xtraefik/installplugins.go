package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/plugininstall"
)

// newInstallPlugins is the init-container form of the plugins image: it
// copies the tree into a directory (an emptyDir) that Traefik's container
// mounts at plugins-local, for clusters without image volumes.
func newInstallPlugins(env getenv) *cobra.Command {
	var (
		ref, to, platform string
		insecure          []string
		maxBytes          int64
	)
	cmd := &cobra.Command{
		Use:   "install-plugins --image REF --to DIR",
		Short: "Copy a plugins image's tree (build --plugins-image) into DIR/src, e.g. an emptyDir an init container shares with Traefik",
		Long: `Copy a plugins image's tree (build --plugins-image) into DIR/src: an init
container runs it into an emptyDir that Traefik's container mounts at
/plugins-local, where a cluster cannot mount the image itself (image volumes).

The image's one layer is read once and its digests checked against the manifest
and config before the tree replaces DIR/src; entries outside src/, links that
leave it, devices and hard links are refused. Name the image by digest
(REF@sha256:…) so that every pod gets the same plugins. Registry credentials
come from $DOCKER_CONFIG/config.json (mount the pull Secret there).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Checked here rather than marked required, so that the error says what each flag names.
			var missing []string
			if ref == "" {
				missing = append(missing, "--image REF@sha256:… (the plugins image build --plugins-image pushed, or oci:DIR)")
			}
			if to == "" {
				missing = append(missing, "--to DIR (the existing directory that receives src/, the emptyDir Traefik mounts at /plugins-local)")
			}
			if len(missing) > 0 {
				return fmt.Errorf("install-plugins needs %s", strings.Join(missing, " and "))
			}
			opts := plugininstall.Options{MaxBytes: maxBytes}
			opts.Images.Insecure = append(splitEnvList(env(build.EnvInsecureRegistries)), insecure...)
			opts.Images.RequestTimeout = images.DefaultRequestTimeout
			if platform != "" {
				p, err := images.ParsePlatform(platform)
				if err != nil {
					return fmt.Errorf("--platform: %w", err)
				}
				opts.Platform = p
			}
			dir, err := filepath.Abs(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			got, err := plugininstall.Install(cmd.Context(), ref, dir, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s (layer %s, %s): %d files, %d bytes in %s\n",
				got.Digest, got.Layer, got.Platform, got.Files, got.Bytes, filepath.Join(dir, "src"))
			if parsed, err := images.ParseReference(ref); err == nil && parsed.Transport == images.TransportDocker && parsed.Digest == "" && !quiet(cmd) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s is not pinned by digest: pods started later may get other plugins; use %s@%s\n", ref, parsed.Name, got.Digest)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "image", "", "the plugins image: a registry reference (by digest) or oci:DIR[:TAG]")
	f.StringVar(&to, "to", "", "directory that receives src/ (it must exist: the emptyDir's mount point)")
	f.StringVar(&platform, "platform", "", "platform manifest to read, os/arch[/variant] (default: the host's; every platform holds the same tree)")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host that may be reached over plain HTTP (loopback always may; also $"+build.EnvInsecureRegistries+")")
	f.Int64Var(&maxBytes, "max-bytes", plugininstall.DefaultMaxBytes, "refuse a tree larger than this many bytes")
	return cmd
}

func splitEnvList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
