package build

import (
	"fmt"
	"strconv"
	"time"
)

// epochFromEnv parses a SOURCE_DATE_EPOCH value (seconds since 1970, UTC); empty
// means unset.
func epochFromEnv(v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec < 0 {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative number of seconds", v)
	}
	t := time.Unix(sec, 0).UTC()
	return &t, nil
}
