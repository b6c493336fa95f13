package zsock

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/curvecert"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/spec"
)

type testKey struct {
	name   string
	cert   curvecert.Cert
	secret string // file
}

func makeKey(t *testing.T, dir, name string) testKey {
	t.Helper()
	c, err := curvecert.Generate()
	if err != nil {
		t.Fatal(err)
	}
	_, sec, err := curvecert.Write(dir, name, c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return testKey{name: name, cert: c, secret: sec}
}

func raw(t *testing.T, z85 string) string {
	t.Helper()
	b, err := curvecert.Decode(z85)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// client is a peer made with pebbe directly, as a foreign program would:
// CURVE with the given keys (nil: plain), reconnecting only after a long
// pause so that each refused client is refused exactly once in a test.
func client(t *testing.T, ctx *zmq4.Context, ep string, own *testKey, serverPub string) *zmq4.Socket {
	t.Helper()
	z, err := ctx.NewSocket(zmq4.PUSH)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(z.SetLinger(0))
	must(z.SetReconnectIvl(time.Minute))
	if own != nil {
		must(z.SetCurveServerkey(raw(t, serverPub)))
		must(z.SetCurvePublickey(raw(t, own.cert.Public)))
		must(z.SetCurveSecretkey(raw(t, own.cert.Secret)))
	}
	must(z.Connect(ep))
	return z
}

// TestCurveServerRefuses: a CURVE server socket opened by zsock lets in
// exactly the allowed client; a client with another key, a plain client and
// a client that expects another server key get nothing through, and only
// the first reaches (and is counted by) the ZAP handler.
func TestCurveServerRefuses(t *testing.T) {
	dir := t.TempDir()
	srvKey, allowed, stranger := makeKey(t, dir, "server"), makeKey(t, dir, "allowed"), makeKey(t, dir, "stranger")
	ctx, err := NewContext()
	if err != nil {
		t.Fatal(err)
	}
	peers, err := zmq4.NewContext() // the clients' machine: no ZAP handler
	if err != nil {
		t.Fatal(err)
	}
	var open []*zmq4.Socket
	defer func() {
		for _, z := range open {
			z.Close()
		}
		peers.Term()
	}()
	s := &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{"tcp://127.0.0.1:*"},
		Options: []spec.Option{{Name: "rcvtimeo", Value: 20000}},
		Curve: &spec.Curve{Server: true, Key: "server", Public: srvKey.cert.Public, SecretFile: srvKey.secret,
			Allow: []spec.CurveKey{{Name: "allowed", Public: allowed.cert.Public}}}}
	srv, err := OpenWith(ctx, s, Options{Node: "sink"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Close()
		ctx.Term()
	}()
	if srv.Guard == nil || !strings.HasPrefix(srv.Guard.Domain, "ztopo/sink/in/") {
		t.Fatalf("got guard %+v", srv.Guard)
	}
	ep := srv.Bound[0]
	// Each refused client is counted once: by the ZAP handler (the
	// unknown key) or by the socket's monitor (the plain client and the
	// one expecting another server key fail before ZAP).
	wrongServer := stranger.cert.Public
	for i, bad := range []struct {
		name      string
		own       *testKey
		serverPub string
	}{
		{"unknown key", &stranger, srvKey.cert.Public},
		{"plain", nil, ""},
		{"other server key", &allowed, wrongServer},
	} {
		z := client(t, peers, ep, bad.own, bad.serverPub)
		open = append(open, z)
		for j := 0; j < 10; j++ {
			if _, err := z.SendMessage("bad", bad.name, zmq4.DONTWAIT); err != nil && !IsAgain(err) {
				t.Fatal(err)
			}
		}
		want := uint64(i + 1)
		testutil.WaitFor(t, fmt.Sprintf("%s: %d refusals counted", bad.name, want), func() bool {
			return srv.Stats.Snapshot().AuthFailures >= want
		})
		if got := srv.Stats.Snapshot().AuthFailures; got != want {
			t.Fatalf("%s: got %d refusals, want %d", bad.name, got, want)
		}
	}
	good := client(t, peers, ep, &allowed, srvKey.cert.Public)
	open = append(open, good)
	const n = 100
	for i := 0; i < n; i++ {
		if _, err := good.SendMessage("ok", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := good.SendMessage("end"); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for {
		msg, err := srv.Recv(0)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got[string(msg[0])]++
		if string(msg[0]) == "end" {
			break
		}
	}
	if got["ok"] != n || got["bad"] != 0 {
		t.Fatalf("got %v, want %d ok and no bad", got, n)
	}
	if f := srv.Stats.Snapshot().AuthFailures; f != 3 {
		t.Fatalf("got %d auth failures, want 3 (one per refused client)", f)
	}
	if !srv.Guard.Allows(allowed.cert.Public) || srv.Guard.Allows(stranger.cert.Public) {
		t.Fatal("Allows disagrees with the allow list")
	}
}

// TestCurveFailsClosed: a CURVE server is not opened when ztopo's ZAP
// handler cannot run in its context, nor when its secret is readable by
// others.
func TestCurveFailsClosed(t *testing.T) {
	dir := t.TempDir()
	k := makeKey(t, dir, "server")
	ctx, err := NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Term()
	s := &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{"tcp://127.0.0.1:*"},
		Curve: &spec.Curve{Server: true, Key: "server", Public: k.cert.Public, SecretFile: k.secret, AllowAny: true}}

	// Someone else holds the ZAP endpoint of this context.
	squatter, err := ctx.NewSocket(zmq4.REP)
	if err != nil {
		t.Fatal(err)
	}
	squatter.SetLinger(0)
	if err := squatter.Bind(zapEndpoint); err != nil {
		t.Fatal(err)
	}
	sock, err := OpenWith(ctx, s, Options{Node: "sink"})
	if err == nil || !strings.Contains(err.Error(), `socket "in": curve: ZAP handler: bind inproc://zeromq.zap.01`) {
		t.Fatalf("got %v, %v; want a ZAP handler error", sock, err)
	}
	squatter.Close()

	if err := os.Chmod(k.secret, 0o644); err != nil {
		t.Fatal(err)
	}
	sock, err = OpenWith(ctx, s, Options{Node: "sink"})
	if err == nil || !strings.Contains(err.Error(), "mode 0644 lets group or others at a secret key") {
		t.Fatalf("got %v, %v; want a mode error", sock, err)
	}
	if strings.Contains(err.Error(), k.cert.Secret) {
		t.Fatal("the error shows the secret")
	}
}

// TestCurveRefusalBeforeZAPLogged: a handshake libzmq refuses before ZAP
// (a plain client; a client expecting another server key) is counted and
// logged with the peer's address and the reason.
func TestCurveRefusalBeforeZAPLogged(t *testing.T) {
	dir := t.TempDir()
	srvKey, other := makeKey(t, dir, "server"), makeKey(t, dir, "other")
	for _, tc := range []struct {
		name      string
		own       *testKey
		serverPub string
		reason    string
	}{
		// Either side may see the mismatch first: when the client does,
		// and hangs up, the server's handshake fails on the broken pipe.
		{"plain", nil, "", `reason="(not a CURVE client \(mechanism mismatch\)|handshake failed: [a-z ]+)"`},
		{"other server key", &other, other.cert.Public, `reason="cannot decrypt the client's hello \(it expects another server key\)"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, err := NewContext()
			if err != nil {
				t.Fatal(err)
			}
			peers, err := zmq4.NewContext()
			if err != nil {
				t.Fatal(err)
			}
			var logs testutil.Buffer
			log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
			s := &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{"tcp://127.0.0.1:*"},
				Curve: &spec.Curve{Server: true, Key: "server", Public: srvKey.cert.Public, SecretFile: srvKey.secret, AllowAny: true}}
			srv, err := OpenWith(ctx, s, Options{Node: "sink", Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			z := client(t, peers, srv.Bound[0], tc.own, tc.serverPub)
			testutil.WaitFor(t, "the refusal logged", func() bool {
				return strings.Contains(logs.String(), "refused a CURVE handshake")
			})
			if got := srv.Stats.Snapshot().AuthFailures; got != 1 {
				t.Errorf("got %d refusals, want 1", got)
			}
			line := logs.String()
			// The peer's address is read from the accepted connection
			// when its ACCEPTED event is read: "unknown" when it was
			// closed by then (a slow machine, the race detector).
			if !regexp.MustCompile(`peer=(127\.0\.0\.1:\d+|unknown) ` + tc.reason).MatchString(line) {
				t.Errorf("log line without the peer's address or reason %s:\n%s", tc.reason, line)
			}
			z.Close()
			srv.Close()
			peers.Term()
			ctx.Term()
		})
	}
}
