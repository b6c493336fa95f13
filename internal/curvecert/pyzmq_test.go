package curvecert_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/curvecert"
	"github.com/ztopo/ztopo/internal/testutil"
)

const python = testutil.Python

// TestPyzmqReadsOurs: zmq.auth.load_certificate reads the pair Write
// writes, with the same keys.
func TestPyzmqReadsOurs(t *testing.T) {
	testutil.NeedPyzmq(t)
	dir := t.TempDir()
	c, err := curvecert.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pub, sec, err := curvecert.Write(dir, "node", c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "-c", `
import sys, zmq.auth
p, s = zmq.auth.load_certificate(sys.argv[1])
print(p.decode(), s)
p, s = zmq.auth.load_certificate(sys.argv[2])
print(p.decode(), s.decode())
`, pub, sec).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := c.Public + " None\n" + c.Public + " " + c.Secret + "\n"
	if string(out) != want {
		t.Fatalf("pyzmq read other keys than we wrote")
	}
}

// TestWeReadPyzmqs: ReadPublic and ReadSecret read what
// zmq.auth.create_certificates writes.
func TestWeReadPyzmqs(t *testing.T) {
	testutil.NeedPyzmq(t)
	dir := t.TempDir()
	out, err := exec.Command(python, "-c", `
import sys, os, zmq.auth
pub, sec = zmq.auth.create_certificates(sys.argv[1], "peer")
os.chmod(sec, 0o600)
p, s = zmq.auth.load_certificate(sec)
print(p.decode(), s.decode())
`, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	keys := strings.Fields(string(out))
	if len(keys) != 2 {
		t.Fatalf("python printed %q", out)
	}
	got, err := curvecert.ReadPublic(filepath.Join(dir, "peer.key"))
	if err != nil || got != keys[0] {
		t.Fatalf("ReadPublic: got %q, %v, want %q", got, err, keys[0])
	}
	c, err := curvecert.ReadSecret(filepath.Join(dir, "peer.key_secret"))
	if err != nil || c.Public != keys[0] || c.Secret != keys[1] {
		t.Fatalf("ReadSecret: got other keys than pyzmq wrote (%v)", err)
	}
	l, err := curvecert.List(dir)
	if err != nil || len(l) != 1 || l[0].Name != "peer" || l[0].Public != keys[0] {
		t.Fatalf("List: got %+v, %v", l, err)
	}
}
