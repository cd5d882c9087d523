package vendored_ok

import _ "github.com/example/ignored"
