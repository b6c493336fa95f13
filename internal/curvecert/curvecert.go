// Package curvecert reads and writes CURVE key pairs in the CZMQ certificate
// format: NAME.key holds the public key, NAME.key_secret the public and the
// secret key, each a ZPL text file with a `curve` section and
// `public-key = "Z85"` / `secret-key = "Z85"` entries. This is what CZMQ's
// zcert_save writes and what pyzmq's zmq.auth.create_certificates writes and
// zmq.auth.load_certificate reads.
//
// A secret file must be a regular file that neither group nor others may
// read, write or execute (mode 0600 or stricter), owned by the user or root,
// as ssh demands of private keys. Nothing in this package puts a secret key
// in an error message.
package curvecert

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// KeyLen is the length of a CURVE key in Z85: 32 bytes, 40 characters.
const KeyLen = 40

// maxFile bounds what is read of a certificate file: real ones are a few
// hundred bytes.
const maxFile = 64 << 10

// Suffixes of the two files of a pair.
const (
	PublicSuffix = ".key"
	SecretSuffix = ".key_secret"
)

// nameRE is what a key name looks like: it names NAME.key and
// NAME.key_secret, so it holds no path separator and does not start with a
// dot.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidName reports whether name can name a key pair.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Cert is a parsed certificate. Secret is empty in a public certificate.
type Cert struct {
	Public string // Z85
	Secret string // Z85; never print it
}

// PublicPath and SecretPath name the files of key NAME in dir.
func PublicPath(dir, name string) string { return filepath.Join(dir, name+PublicSuffix) }
func SecretPath(dir, name string) string { return filepath.Join(dir, name+SecretSuffix) }

// Parse reads a certificate. It accepts what CZMQ and pyzmq write: comments
// (#) and blank lines, section names, and `key = value` entries whose value
// may be quoted; public-key and secret-key are taken wherever they are, as
// pyzmq does. It fails on a missing or repeated public-key, a repeated
// secret-key, a key that is not 40 Z85 characters, and a secret key that
// does not belong to the public key.
func Parse(data []byte) (Cert, error) {
	var c Cert
	var havePub, haveSec bool
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(s, "=")
		if !ok {
			continue // a section name: metadata, curve
		}
		name = strings.TrimSpace(name)
		value = unquote(strings.TrimSpace(value))
		switch name {
		case "public-key":
			if havePub {
				return Cert{}, fmt.Errorf("line %d: public-key given twice", i+1)
			}
			if err := checkKey(value); err != nil {
				return Cert{}, fmt.Errorf("line %d: public-key %v", i+1, err)
			}
			c.Public, havePub = value, true
		case "secret-key":
			if haveSec {
				return Cert{}, fmt.Errorf("line %d: secret-key given twice", i+1)
			}
			if err := checkKey(value); err != nil {
				return Cert{}, fmt.Errorf("line %d: secret-key %v", i+1, err)
			}
			c.Secret, haveSec = value, true
		}
	}
	if !havePub {
		return Cert{}, errors.New("no public-key in the certificate")
	}
	if haveSec {
		pub, err := PublicOf(c.Secret)
		if err != nil {
			return Cert{}, err
		}
		if pub != c.Public {
			return Cert{}, errors.New("its secret-key does not belong to its public-key")
		}
	}
	return c, nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// checkKey reports a value that is not a Z85 CURVE key; it never repeats
// the value.
func checkKey(s string) error {
	if len(s) != KeyLen {
		return fmt.Errorf("is %d characters, want %d (Z85)", len(s), KeyLen)
	}
	if _, err := Z85Decode(s); err != nil {
		return errors.New("is not valid Z85")
	}
	return nil
}

// ValidKey reports whether s is a Z85-encoded CURVE key.
func ValidKey(s string) bool { return checkKey(s) == nil }

// Decode returns the 32 bytes of a Z85 key.
func Decode(s string) ([]byte, error) {
	if err := checkKey(s); err != nil {
		return nil, fmt.Errorf("key %v", err)
	}
	return Z85Decode(s)
}

// PublicOf derives the public key of a secret key (both Z85): X25519 of the
// secret and the base point, as libzmq's crypto_box_keypair does.
func PublicOf(secret string) (string, error) {
	raw, err := Decode(secret)
	if err != nil {
		return "", errors.New("bad secret-key")
	}
	priv, err := ecdh.X25519().NewPrivateKey(raw)
	if err != nil {
		return "", errors.New("bad secret-key")
	}
	return Z85Encode(priv.PublicKey().Bytes())
}

// Generate makes a new key pair (Z85).
func Generate() (Cert, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return Cert{}, err
	}
	pub, _ := Z85Encode(priv.PublicKey().Bytes())
	sec, _ := Z85Encode(priv.Bytes())
	return Cert{Public: pub, Secret: sec}, nil
}

// readFile reads at most maxFile bytes of a regular file. Its errors do
// not name the path.
func readFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, nil, pe.Err
		}
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxFile {
		return nil, nil, fmt.Errorf("larger than %d bytes: not a certificate", maxFile)
	}
	return data, fi, nil
}

// ReadPublic reads a public certificate (NAME.key). One that holds a
// secret-key is refused: public certificates are meant to be handed out.
// Like every error of this package but Write's, the error does not name the
// file: callers say which one they read.
func ReadPublic(path string) (string, error) {
	data, _, err := readFile(path)
	if err != nil {
		return "", err
	}
	c, err := Parse(data)
	if err != nil {
		return "", err
	}
	if c.Secret != "" {
		return "", errors.New("it holds a secret-key: a public certificate must not (the secret belongs in NAME" + SecretSuffix + ")")
	}
	return c.Public, nil
}

// ModeError is a secret file that others may access.
type ModeError struct{ Mode os.FileMode }

func (e *ModeError) Error() string {
	return fmt.Sprintf("mode %04o lets group or others at a secret key (chmod 600 it)", uint32(e.Mode.Perm()))
}

// CheckSecretMode refuses a secret file that group or others may access,
// or that belongs to another user than this one or root, as ssh does.
func CheckSecretMode(fi os.FileInfo) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return &ModeError{Mode: fi.Mode()}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() && st.Uid != 0 {
		return fmt.Errorf("it belongs to user %d, not to this user (%d) or root", st.Uid, os.Getuid())
	}
	return nil
}

// ReadSecret reads a secret certificate (NAME.key_secret), refusing it when
// its mode lets others at it.
func ReadSecret(path string) (Cert, error) {
	data, fi, err := readFile(path)
	if err != nil {
		return Cert{}, err
	}
	if err := CheckSecretMode(fi); err != nil {
		return Cert{}, err
	}
	c, err := Parse(data)
	if err != nil {
		return Cert{}, err
	}
	if c.Secret == "" {
		return Cert{}, errors.New("no secret-key in the certificate")
	}
	return c, nil
}

// format renders a certificate the way CZMQ's zcert_save does.
func format(name string, c Cert, now time.Time, secret bool) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "#   ****  Generated on %s by ztopo  ****\n", now.UTC().Format("2006-01-02 15:04:05"))
	if secret {
		b.WriteString("#   ZeroMQ CURVE **Secret** Certificate\n")
		b.WriteString("#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n")
	} else {
		b.WriteString("#   ZeroMQ CURVE Public Certificate\n")
		b.WriteString("#   Exchange securely, or use a secure mechanism to verify the contents\n")
		b.WriteString("#   of this file after exchange.\n")
	}
	b.WriteString("\nmetadata\n")
	fmt.Fprintf(&b, "    name = %q\n", name)
	b.WriteString("curve\n")
	fmt.Fprintf(&b, "    public-key = %q\n", c.Public)
	if secret {
		fmt.Fprintf(&b, "    secret-key = %q\n", c.Secret)
	}
	return []byte(b.String())
}

// Write writes the pair of key name into dir (created 0700 if missing):
// NAME.key with mode 0644 and NAME.key_secret with mode 0600. It refuses
// to overwrite either file.
func Write(dir, name string, c Cert, now time.Time) (pubPath, secPath string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	pubPath, secPath = PublicPath(dir, name), SecretPath(dir, name)
	for _, p := range []string{pubPath, secPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s exists: not overwriting a key", p)
		}
	}
	if err := writeNew(secPath, format(name, c, now, true), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, format(name, c, now, false), 0o644); err != nil {
		os.Remove(secPath)
		return "", "", err
	}
	return pubPath, secPath, nil
}

// writeNew creates path exclusively with mode (whatever the umask), writes
// data and syncs it.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// Entry is one key of a directory.
type Entry struct {
	Name      string
	Public    string // "" when Err is set
	HasSecret bool   // NAME.key_secret exists
	Err       error  // the public certificate could not be read
}

// List returns the keys of dir (every NAME.key), sorted by name.
func List(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), PublicSuffix)
		if !ok || name == "" {
			continue
		}
		e := Entry{Name: name}
		e.Public, e.Err = ReadPublic(filepath.Join(dir, de.Name()))
		if _, err := os.Lstat(SecretPath(dir, name)); err == nil {
			e.HasSecret = true
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Names returns the key names of dir (every NAME.key), sorted; nil if dir
// cannot be read.
func Names(dir string) []string {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, de := range des {
		if name, ok := strings.CutSuffix(de.Name(), PublicSuffix); ok && name != "" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
