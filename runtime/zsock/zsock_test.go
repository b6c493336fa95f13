package zsock

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

func newCtx(t *testing.T) *zmq4.Context {
	t.Helper()
	ctx, err := NewContext()
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after every socket's cleanup.
	t.Cleanup(func() {
		if err := ctx.Term(); err != nil {
			t.Errorf("term: %v", err)
		}
	})
	return ctx
}

func open(t *testing.T, ctx *zmq4.Context, s *spec.Socket) *Socket {
	t.Helper()
	sock, err := Open(ctx, s)
	if err != nil {
		t.Fatalf("open %s: %v", s.Name, err)
	}
	t.Cleanup(func() { sock.Close() })
	return sock
}

func show(fs [][]byte) string { return fmt.Sprintf("%q", fs) }

func TestSplitEnvelope(t *testing.T) {
	tests := []struct {
		name      string
		kind      envKind
		in        [][]byte
		env, body string
	}{
		{"none keeps all", envNone, zsocktest.Frames("", "a"), `[]`, `["" "a"]`},
		{"router with delimiter", envRouter, zsocktest.Frames("id", "", "a", "b"), `["id" ""]`, `["a" "b"]`},
		{"router without delimiter", envRouter, zsocktest.Frames("id", "a"), `["id"]`, `["a"]`},
		{"router multi-hop", envRouter, zsocktest.Frames("id", "c1", "", "a"), `["id" "c1" ""]`, `["a"]`},
		{"router empty identity frame is the identity", envRouter, zsocktest.Frames("", "", "a"), `["" ""]`, `["a"]`},
		{"dealer with delimiter", envDealer, zsocktest.Frames("", "a"), `[""]`, `["a"]`},
		{"dealer worker envelope", envDealer, zsocktest.Frames("client", "", "req"), `["client" ""]`, `["req"]`},
		{"dealer without delimiter", envDealer, zsocktest.Frames("a", "b"), `[]`, `["a" "b"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, body := splitEnvelope(tt.kind, tt.in)
			if got := show(env); got != tt.env {
				t.Errorf("env: got %s, want %s", got, tt.env)
			}
			if got := show(body); got != tt.body {
				t.Errorf("body: got %s, want %s", got, tt.body)
			}
		})
	}
}

func TestRouterEnvelopeRoundTrip(t *testing.T) {
	ctx := newCtx(t)
	ep := "inproc://env-roundtrip"
	router := open(t, ctx, &spec.Socket{Name: "front", Type: spec.ROUTER, Bind: []string{ep}})
	req := open(t, ctx, &spec.Socket{Name: "client", Type: spec.REQ, Connect: []string{ep}, Identity: "c1"})

	if err := req.Send(zsocktest.Frames("hello", "world"), 0); err != nil {
		t.Fatal(err)
	}
	msg, err := router.Recv(0)
	if err != nil {
		t.Fatal(err)
	}
	env, body := router.SplitEnvelope(msg)
	if got, want := show(env), `["c1" ""]`; got != want {
		t.Fatalf("env: got %s, want %s", got, want)
	}
	if got, want := show(body), `["hello" "world"]`; got != want {
		t.Fatalf("body: got %s, want %s", got, want)
	}
	if err := router.SendEnvelope(env, zsocktest.Frames("HELLO"), 0); err != nil {
		t.Fatal(err)
	}
	reply, err := req.Recv(0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := show(reply), `["HELLO"]`; got != want {
		t.Fatalf("reply: got %s, want %s", got, want)
	}
	in, out := router.Stats.Snapshot(), req.Stats.Snapshot()
	if in.MsgsIn != 1 || in.MsgsOut != 1 || in.BytesIn != uint64(len("c1hello"+"world")) || in.BytesOut != uint64(len("c1HELLO")) {
		t.Errorf("router stats: got %+v", in)
	}
	if out.MsgsOut != 1 || out.MsgsIn != 1 || out.BytesOut != 10 || out.BytesIn != 5 {
		t.Errorf("req stats: got %+v", out)
	}
}

func TestSubscribeFilters(t *testing.T) {
	ctx := newCtx(t)
	ep := "inproc://subs"
	pub := open(t, ctx, &spec.Socket{Name: "pub", Type: spec.PUB, Bind: []string{ep}})
	sub := open(t, ctx, &spec.Socket{Name: "sub", Type: spec.SUB, Connect: []string{ep}, Subscribe: []string{"B"}})
	xsub := open(t, ctx, &spec.Socket{Name: "xsub", Type: spec.XSUB, Connect: []string{ep}, Subscribe: []string{"A"}})

	// Subscriptions travel asynchronously; publish until both have seen one.
	deadline := time.Now().Add(20 * time.Second)
	var gotSub, gotXsub [][]byte
	for (gotSub == nil || gotXsub == nil) && time.Now().Before(deadline) {
		for _, topic := range []string{"A", "B", "C"} {
			if err := pub.Send(zsocktest.Frames(topic, "body"), 0); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
		if m, err := sub.Recv(zmq4.DONTWAIT); err == nil && gotSub == nil {
			gotSub = m
		}
		if m, err := xsub.Recv(zmq4.DONTWAIT); err == nil && gotXsub == nil {
			gotXsub = m
		}
	}
	if got, want := show(gotSub), `["B" "body"]`; got != want {
		t.Errorf("sub: got %s, want %s", got, want)
	}
	if got, want := show(gotXsub), `["A" "body"]`; got != want {
		t.Errorf("xsub: got %s, want %s", got, want)
	}
}

func TestBindInUseNamesSocketAndEndpoint(t *testing.T) {
	ctx := newCtx(t)
	ep := zsocktest.TCP(t)
	open(t, ctx, &spec.Socket{Name: "first", Type: spec.PULL, Bind: []string{ep}})
	_, err := Open(ctx, &spec.Socket{Name: "out", Type: spec.PUSH, Bind: []string{ep}})
	if err == nil {
		t.Fatal("second bind succeeded")
	}
	want := fmt.Sprintf(`socket "out": bind %s: address already in use`, ep)
	if err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
}

func TestBindRetriesWhileAddressIsReleased(t *testing.T) {
	ctx := newCtx(t)
	ep := zsocktest.TCP(t)
	holder := open(t, ctx, &spec.Socket{Name: "old", Type: spec.PULL, Bind: []string{ep}})
	done := make(chan error, 1)
	go func() {
		s, err := Open(ctx, &spec.Socket{Name: "new", Type: spec.PULL, Bind: []string{ep}})
		if err == nil {
			s.Close()
		}
		done <- err
	}()
	// The new socket is retrying by now, or will start to shortly; either
	// way the port is free well within its retry window.
	time.Sleep(100 * time.Millisecond)
	holder.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("rebind: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rebind did not return")
	}
}

func TestBoundShowsWildcardPort(t *testing.T) {
	ctx := newCtx(t)
	s := open(t, ctx, &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{"tcp://127.0.0.1:*"}})
	if len(s.Bound) != 1 || !strings.HasPrefix(s.Bound[0], "tcp://127.0.0.1:") || strings.HasSuffix(s.Bound[0], ":*") {
		t.Fatalf("bound: got %q", s.Bound)
	}
}

func TestConnectErrorNamesEndpoint(t *testing.T) {
	ctx := newCtx(t)
	_, err := Open(ctx, &spec.Socket{Name: "in", Type: spec.PULL, Connect: []string{"tcp://127.0.0.1"}})
	if err == nil || !strings.HasPrefix(err.Error(), `socket "in": connect tcp://127.0.0.1: `) {
		t.Fatalf("got %v", err)
	}
}

func TestOptionsBySpecName(t *testing.T) {
	ctx := newCtx(t)
	s := open(t, ctx, &spec.Socket{Name: "out", Type: spec.PUSH, Options: []spec.Option{
		{Name: "linger", Value: 250},
		{Name: "rcvtimeo", Value: -1},
		{Name: "reconnect_ivl", Value: time.Second},
		{Name: "sndhwm", Value: 77},
		{Name: "immediate", Value: 1},
		{Name: "maxmsgsize", Value: 4096},
		{Name: "routing_id", Value: "rid"},
	}})
	if s.Linger() != 250*time.Millisecond {
		t.Errorf("Linger(): got %v", s.Linger())
	}
	check := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	l, err := s.Z.GetLinger()
	check("linger", l, 250*time.Millisecond, err)
	r, err := s.Z.GetRcvtimeo()
	check("rcvtimeo", r, time.Duration(-1), err)
	ri, err := s.Z.GetReconnectIvl()
	check("reconnect_ivl", ri, time.Second, err)
	h, err := s.Z.GetSndhwm()
	check("sndhwm", h, 77, err)
	im, err := s.Z.GetImmediate()
	check("immediate", im, true, err)
	mm, err := s.Z.GetMaxmsgsize()
	check("maxmsgsize", mm, int64(4096), err)
	id, err := s.Z.GetIdentity()
	check("routing_id", id, "rid", err)
}

func TestDefaultLingerIsZero(t *testing.T) {
	ctx := newCtx(t)
	s := open(t, ctx, &spec.Socket{Name: "out", Type: spec.PUSH})
	l, err := s.Z.GetLinger()
	if err != nil || l != 0 {
		t.Fatalf("linger: got %v, %v; want 0", l, err)
	}
}

// TestEveryOptionHasAWorkingSetter sets every option of the table on a
// socket of a type that accepts it, with a value libzmq accepts.
func TestEveryOptionHasAWorkingSetter(t *testing.T) {
	ctx := newCtx(t)
	key := zmq4.Z85encode(strings.Repeat("k", 32))
	values := map[string]any{
		"curve_publickey": key, "curve_secretkey": key, "curve_serverkey": key,
		"plain_username": "u", "plain_password": "p", "zap_domain": "global",
		"socks_proxy": "127.0.0.1:1080", "connect_rid": "peer", "connect_routing_id": "peer",
		"identity": "id", "routing_id": "id", "xpub_welcome_msg": "hi",
		"gssapi_principal": "p", "gssapi_service_principal": "s",
	}
	types := map[string]spec.SocketType{
		"router_mandatory": spec.ROUTER, "router_handover": spec.ROUTER, "probe_router": spec.ROUTER,
		"connect_rid": spec.ROUTER, "connect_routing_id": spec.ROUTER,
		"xpub_verbose": spec.XPUB, "xpub_verboser": spec.XPUB, "xpub_nodrop": spec.XPUB,
		"xpub_manual": spec.XPUB, "xpub_welcome_msg": spec.XPUB,
		"req_correlate": spec.REQ, "req_relaxed": spec.REQ,
		"stream_notify": spec.STREAM, "invert_matching": spec.SUB,
	}
	for _, name := range OptionNames() {
		t.Run(name, func(t *testing.T) {
			if strings.HasPrefix(name, "gssapi") && !zmq4.HasGssapi() {
				t.Skip("libzmq built without gssapi")
			}
			if strings.HasPrefix(name, "curve") && !zmq4.HasCurve() {
				t.Skip("libzmq built without curve")
			}
			typ := types[name]
			if typ == "" {
				typ = spec.DEALER
			}
			v, ok := values[name]
			if !ok {
				v = 1
			}
			s := open(t, ctx, &spec.Socket{Name: "s", Type: typ})
			if err := SetOption(s.Z, name, v); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnknownOption(t *testing.T) {
	ctx := newCtx(t)
	_, err := Open(ctx, &spec.Socket{Name: "s", Type: spec.PUSH, Options: []spec.Option{{Name: "sndhwmm", Value: 1}}})
	if err == nil || err.Error() != `socket "s": unknown socket option "sndhwmm"` {
		t.Fatalf("got %v", err)
	}
}

func TestHandshakeWatch(t *testing.T) {
	ctx := newCtx(t)
	ep := zsocktest.TCP(t)
	sub, err := OpenWith(ctx, &spec.Socket{Name: "sub", Type: spec.SUB, Connect: []string{ep}, Subscribe: []string{""}}, Options{WatchHandshakes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got := sub.Pending(); len(got) != 1 || got[0] != ep {
		t.Fatalf("pending before bind: got %q", got)
	}
	pub := open(t, ctx, &spec.Socket{Name: "pub", Type: spec.PUB, Bind: []string{ep}})
	_ = pub
	poller := zmq4.NewPoller()
	poller.Add(sub.Monitor(), zmq4.POLLIN)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no handshake event")
		}
		if _, err := poller.Poll(100 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		done, err := sub.ReadMonitor()
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
	}
	if sub.Monitor() != nil || len(sub.Pending()) != 0 {
		t.Fatalf("monitor still attached: pending %q", sub.Pending())
	}
}

func TestSendDontwaitWouldBlock(t *testing.T) {
	ctx := newCtx(t)
	s := open(t, ctx, &spec.Socket{Name: "out", Type: spec.PUSH, Connect: []string{"inproc://nobody"}, Options: []spec.Option{{Name: "sndhwm", Value: 1}}})
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = s.Send(zsocktest.Frames("x"), zmq4.DONTWAIT)
	}
	if !IsAgain(err) {
		t.Fatalf("got %v, want EAGAIN", err)
	}
	if st := s.Stats.Snapshot(); st.SendErrors != 0 {
		t.Errorf("would-block counted as a send error: %+v", st)
	}
}

// TestSpecOptionsHaveSetters: every option a topology may name can be set,
// with the kind spec parses it as.
func TestSpecOptionsHaveSetters(t *testing.T) {
	for name, kind := range spec.SocketOptions() {
		got, ok := OptionKind(name)
		if !ok {
			t.Errorf("option %q has no setter", name)
			continue
		}
		if got != kind {
			t.Errorf("option %q: kind %v here, %v in spec", name, got, kind)
		}
	}
}
