package watch

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestFileSumStreams: hashing a watched file does not hold it in memory
// (issue 11 item 12: saving a 1 GB file over a running topology's file
// took ztopo up to 1.07 GB).
func TestFileSumStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20 // sparse: no disk
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sum, err := fileSum(path)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("hashing a %d-byte file allocated %d bytes, want a bounded buffer", size, got)
	}
	h := sha256.New()
	h.Write(make([]byte, size))
	var want [sha256.Size]byte
	copy(want[:], h.Sum(nil))
	if sum != want {
		t.Errorf("got sum %x, want %x", sum, want)
	}
	if _, err := fileSum("/dev/zero"); err == nil {
		t.Error("fileSum(/dev/zero) returned, want an error without reading")
	}
}
