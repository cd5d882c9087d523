package memstat

import "testing"

var sink []byte

func TestAllocated(t *testing.T) {
	if n := Allocated(func() { sink = make([]byte, 4<<20) }); n < 4<<20 {
		t.Errorf("a 4 MiB slice counted %d bytes", n)
	}
	if n := Allocated(func() {}); n > 64<<10 {
		t.Errorf("nothing counted %d bytes", n)
	}
}
