package vendored_ok

import (
	"testing"

	"github.com/example/testonly"
)

func TestX(t *testing.T) { testonly.Use(t) }
