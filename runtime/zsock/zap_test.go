package zsock

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/curvecert"
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
	const monEP = "inproc://test/zap-mon"
	if err := srv.Z.Monitor(monEP, zmq4.EVENT_HANDSHAKE_FAILED_NO_DETAIL|zmq4.EVENT_HANDSHAKE_FAILED_PROTOCOL|zmq4.EVENT_HANDSHAKE_FAILED_AUTH|zmq4.EVENT_HANDSHAKE_SUCCEEDED); err != nil {
		t.Fatal(err)
	}
	mon, err := ctx.NewSocket(zmq4.PAIR)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	mon.SetLinger(0)
	mon.SetRcvtimeo(20 * time.Second)
	if err := mon.Connect(monEP); err != nil {
		t.Fatal(err)
	}
	wrongServer := stranger.cert.Public
	const failed = zmq4.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq4.EVENT_HANDSHAKE_FAILED_PROTOCOL
	for _, bad := range []struct {
		name      string
		own       *testKey
		serverPub string
		want      zmq4.Event
	}{
		{"unknown key", &stranger, srvKey.cert.Public, zmq4.EVENT_HANDSHAKE_FAILED_AUTH},
		{"plain", nil, "", failed},
		{"other server key", &allowed, wrongServer, failed},
	} {
		z := client(t, peers, ep, bad.own, bad.serverPub)
		open = append(open, z)
		for i := 0; i < 10; i++ {
			if _, err := z.SendMessage("bad", bad.name, zmq4.DONTWAIT); err != nil && !IsAgain(err) {
				t.Fatal(err)
			}
		}
		ev, _, _, err := mon.RecvEvent(0)
		if err != nil {
			t.Fatalf("%s: no handshake event: %v", bad.name, err)
		}
		if ev&bad.want == 0 {
			t.Fatalf("%s: got event %v, want %v", bad.name, ev, bad.want)
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
	if f := srv.Stats.Snapshot().AuthFailures; f != 1 {
		t.Fatalf("got %d auth failures, want 1 (the unknown key; the others fail before ZAP)", f)
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
