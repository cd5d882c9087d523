// Module yaegi015 builds the verification worker with the Yaegi Traefik v2.11
// embeds (v0.15.1) and the mapstructure it decodes configurations with
// (v1.5.0), instead of the versions the xtraefik binary links for Traefik v3.
// It is a module of its own because one build can link only one version of a
// module: the replace directives below apply only when this is the main module.
module github.com/xtraefik/xtraefik/verify/yaegi015

go 1.26.8

require github.com/xtraefik/xtraefik v0.0.0

require (
	github.com/elastic/go-seccomp-bpf v1.6.0 // indirect
	github.com/http-wasm/http-wasm-host-go v0.7.0 // indirect
	github.com/landlock-lsm/go-landlock v0.11.2 // indirect
	github.com/mitchellh/mapstructure v1.5.1-0.20231216201459-8508981c8b6c // indirect
	github.com/stealthrocket/wasi-go v0.8.0 // indirect
	github.com/stealthrocket/wazergo v0.19.1 // indirect
	github.com/tetratelabs/wazero v1.8.0 // indirect
	github.com/traefik/yaegi v0.16.1 // indirect
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
	kernel.org/pub/linux/libs/security/libcap/cap v1.2.78 // indirect
	kernel.org/pub/linux/libs/security/libcap/psx v1.2.78 // indirect
)

replace github.com/xtraefik/xtraefik => ../..

replace github.com/traefik/yaegi => github.com/traefik/yaegi v0.15.1

replace github.com/mitchellh/mapstructure => github.com/mitchellh/mapstructure v1.5.0
