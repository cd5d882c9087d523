//go:build windows

package vendored_ok

import _ "github.com/example/windowsonly"
