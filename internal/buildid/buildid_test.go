package buildid

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSelfHasTheGoBuildID: the identity holds the executable's build ID,
// as `go tool buildid` reads it.
func TestSelfHasTheGoBuildID(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Skipf("go tool buildid: %v", err)
	}
	want := strings.TrimSpace(string(out))
	if got := Self(); !strings.HasSuffix(got, "+build:"+want) {
		t.Errorf("Self() = %q, want it to end with the build ID %q", got, want)
	}
}
