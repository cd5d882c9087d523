# Admission policy for images built by xtraefik, for
#   cosign verify-attestation --type https://xtraefik.dev/verification/v1 \
#     --policy verification.rego --key cosign.pub IMAGE
# The same rules as verification.cue: the verification record must say that
# every plugin in the image was verified OK, by the interpreter of the image's
# own Traefik release (no approximate verdict), for a named Traefik release.
#
# input is the in-toto statement, predicate included; cosign queries
# data.signature.allow.
package signature

import rego.v1

default allow := false

allow if count(deny) == 0

deny contains "the statement is not an xtraefik verification record" if {
	input.predicateType != "https://xtraefik.dev/verification/v1"
}

deny contains "the record names no Traefik release (traefikVersion)" if {
	not regex.match(`^v[0-9]+\.[0-9]+\.[0-9]+$`, object.get(input.predicate, "traefikVersion", ""))
}

deny contains "the record does not say every plugin is OK (ok)" if {
	object.get(input.predicate, "ok", false) != true
}

deny contains "the record lists no plugin" if {
	count(object.get(input.predicate, "plugins", [])) == 0
}

deny contains sprintf("plugin %v: status %v, not OK", [object.get(p, "alias", "(no alias)"), object.get(p, "status", "missing")]) if {
	some p in input.predicate.plugins
	object.get(p, "status", "") != "OK"
}

deny contains sprintf("plugin %v: not ok", [object.get(p, "alias", "(no alias)")]) if {
	some p in input.predicate.plugins
	object.get(p, "ok", false) != true
}

deny contains sprintf("plugin %v: approximate verdict (checked by another interpreter than the image's Traefik uses)", [object.get(p, "alias", "(no alias)")]) if {
	some p in input.predicate.plugins
	object.get(p, "approximate", false) != false
}
