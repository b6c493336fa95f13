package curvecert

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The key pair of libzmq's tests/testutil_security (its CURVE server).
const (
	zmqPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	zmqSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
)

func TestZ85(t *testing.T) {
	// The test vector of ZeroMQ RFC 32.
	raw := []byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}
	s, err := Z85Encode(raw)
	if err != nil || s != "HelloWorld" {
		t.Fatalf("got %q, %v, want HelloWorld", s, err)
	}
	back, err := Z85Decode(s)
	if err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("got %x, %v, want %x", back, err, raw)
	}
	for _, bad := range []string{"Hell", "Hello World", "Hell\"World", "%%%%%"} {
		if _, err := Z85Decode(bad); err == nil {
			t.Errorf("Z85Decode(%q): got no error", bad)
		}
	}
	if _, err := Z85Encode([]byte{1, 2, 3}); err == nil {
		t.Error("Z85Encode of 3 bytes: got no error")
	}
}

func TestPublicOf(t *testing.T) {
	got, err := PublicOf(zmqSecret)
	if err != nil || got != zmqPublic {
		t.Fatalf("got %q, %v, want %q", got, err, zmqPublic)
	}
}

func TestParse(t *testing.T) {
	pyzmq := `#   ****  Generated on 2026-12-04 15:00:00.000000 by pyzmq  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
curve
    public-key = "` + zmqPublic + `"
    secret-key = "` + zmqSecret + `"
`
	c, err := Parse([]byte(pyzmq))
	if err != nil || c.Public != zmqPublic || c.Secret != zmqSecret {
		t.Fatalf("got %+v, %v", c, err)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "no public-key in the certificate"},
		{"short", "curve\n    public-key = \"abc\"\n", "line 2: public-key is 3 characters, want 40 (Z85)"},
		{"twice", "public-key = '" + zmqPublic + "'\npublic-key = '" + zmqPublic + "'\n", "line 2: public-key given twice"},
		{"mismatch", "public-key = \"" + zmqSecret + "\"\nsecret-key = \"" + zmqSecret + "\"\n", "its secret-key does not belong to its public-key"},
		{"bad secret", "public-key = \"" + zmqPublic + "\"\nsecret-key = \"" + strings.Repeat("\"", 40) + "\"\n", "line 2: secret-key is not valid Z85"},
		{"bad z85", "public-key = \"" + strings.Repeat("~", 40) + "\"\n", "line 1: public-key is not valid Z85"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), zmqSecret) {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
}

func TestWriteReadList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	c, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	pub, sec, err := Write(dir, "worker", c, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{pub: 0o644, sec: 0o600, dir: 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: got mode %v, %v, want %04o", p, fi.Mode().Perm(), err, want)
		}
	}
	if got, err := ReadPublic(pub); err != nil || got != c.Public {
		t.Fatalf("ReadPublic: got %q, %v", got, err)
	}
	if got, err := ReadSecret(sec); err != nil || got != c {
		t.Fatalf("ReadSecret: got %v", err)
	}
	if _, _, err := Write(dir, "worker", c, time.Now()); err == nil || !strings.Contains(err.Error(), "exists: not overwriting a key") {
		t.Fatalf("second Write: got %v", err)
	}
	if _, err := ReadPublic(sec); err == nil || !strings.Contains(err.Error(), "holds a secret-key") {
		t.Fatalf("ReadPublic of a secret file: got %v", err)
	}
	if err := os.Chmod(sec, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = ReadSecret(sec)
	var me *ModeError
	if !errors.As(err, &me) || me.Mode.Perm() != 0o640 {
		t.Fatalf("ReadSecret of a 0640 file: got %v, want a ModeError", err)
	}
	want := "mode 0640 lets group or others at a secret key (chmod 600 it)"
	if err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	l, err := List(dir)
	if err != nil || len(l) != 1 || l[0].Name != "worker" || l[0].Public != c.Public || !l[0].HasSecret {
		t.Fatalf("List: got %+v, %v", l, err)
	}
}

// FuzzParse: Parse never panics, and whatever it accepts holds keys of the
// right form whose secret derives to the public key.
func FuzzParse(f *testing.F) {
	f.Add([]byte("curve\n    public-key = \"" + zmqPublic + "\"\n    secret-key = \"" + zmqSecret + "\"\n"))
	f.Add([]byte("public-key = '" + zmqPublic + "'\n"))
	f.Add([]byte("metadata\n    name = \"x\"\ncurve\n    public-key = \"abcde\"\n"))
	f.Add([]byte("public-key=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != (Cert{}) {
				t.Fatalf("got %+v with error %v", c, err)
			}
			return
		}
		if !ValidKey(c.Public) {
			t.Fatalf("accepted public key %q", c.Public)
		}
		if c.Secret != "" {
			if p, err := PublicOf(c.Secret); err != nil || p != c.Public {
				t.Fatalf("accepted a secret that is not the public key's")
			}
		}
	})
}
