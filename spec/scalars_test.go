package spec

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		bind    bool
		wantErr string
	}{
		{"tcp://127.0.0.1:5555", false, ""},
		{"tcp://*:5555", true, ""},
		{"tcp://*:5555", false, `malformed endpoint "tcp://*:5555": a connect needs a host, not *`},
		{"tcp://127.0.0.1:*", true, ""},
		{"tcp://127.0.0.1:*", false, `malformed endpoint "tcp://127.0.0.1:*": a connect needs a port number`},
		{"tcp://[::1]:5555", false, ""},
		{"tcp://[::]:5555", true, ""},
		{"tcp://[zz]:5555", true, `malformed endpoint "tcp://[zz]:5555": bad IPv6 host "[zz]"`},
		{"tcp://eth0:5555", true, ""},
		{"tcp://example.com:65535", false, ""},
		{"tcp://127.0.0.1:65536", false, `malformed endpoint "tcp://127.0.0.1:65536": port "65536" is not a number from 1 to 65535`},
		{"tcp://10.0.0.1:0", false, `malformed endpoint "tcp://10.0.0.1:0": port "0" is not a number from 1 to 65535`},
		{"tcp://127.0.0.2;127.0.0.1:5555", false, ""},
		{"tcp://:5555", true, `malformed endpoint "tcp://:5555": missing host`},
		{"tcp://h:", true, `malformed endpoint "tcp://h:": missing port`},
		{"ipc:///tmp/x.sock", true, ""},
		{"ipc://@abstract", true, ""},
		{"ipc://", true, `malformed endpoint "ipc://": ipc needs a path`},
		{"inproc://a/b", true, ""},
		{"inproc://", false, `malformed endpoint "inproc://": inproc needs a name`},
		{"pgm://eth0;239.192.1.1:5555", true, ""},
		{"epgm://eth0;239.192.1.1:5555", false, ""},
		{"epgm://239.192.1.1:5555", false, `malformed endpoint "epgm://239.192.1.1:5555": want epgm://interface;group:port`},
		{"udp://127.0.0.1:5555", false, `unknown transport "udp" in endpoint "udp://127.0.0.1:5555": want tcp, ipc, inproc, pgm or epgm`},
		{"localhost:5555", false, `malformed endpoint "localhost:5555": want transport://address (tcp, ipc, inproc, pgm, epgm)`},
	}
	for _, tt := range tests {
		_, err := ParseEndpoint(tt.in, tt.bind)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("ParseEndpoint(%q, bind=%v): got error %q, want %q", tt.in, tt.bind, got, tt.wantErr)
		}
	}
	long := "ipc:///" + string(make([]byte, 106))
	if _, err := ParseEndpoint(long, true); err == nil {
		t.Errorf("got no error for a %d-byte ipc path", len(long)-6)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"250ms", 250 * time.Millisecond, false},
		{"5s", 5 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"1.5s", 1500 * time.Millisecond, false},
		{"100", 100 * time.Millisecond, false},
		{"-1", -time.Millisecond, false},
		{" 7 ", 7 * time.Millisecond, false},
		{"soon", 0, true},
		{"5 s", 0, true},
		{"99999999999999999", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q): got %v, %v, want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseSocketType(t *testing.T) {
	for _, in := range []string{"push", "Push", "PUSH"} {
		if got, err := ParseSocketType(in); err != nil || got != PUSH {
			t.Errorf("ParseSocketType(%q): got %q, %v, want PUSH", in, got, err)
		}
	}
	if _, err := ParseSocketType("PUSHER"); err == nil || err.Error() != `unknown socket type "PUSHER"` {
		t.Errorf("got %v, want unknown socket type", err)
	}
	for _, name := range socketTypeNames {
		if _, ok := compatible[SocketType(name)]; !ok {
			t.Errorf("socket type %s has no compatibility entry", name)
		}
	}
}

// The compatibility table is symmetric: if A talks to B, B talks to A.
func TestCompatibleSymmetric(t *testing.T) {
	for a, peers := range compatible {
		for _, b := range peers {
			if !contains(typeNames(compatible[b]), string(a)) {
				t.Errorf("%s talks to %s but not the other way round", a, b)
			}
		}
	}
}

func TestDefaultRoles(t *testing.T) {
	want := map[SocketType]Role{
		PULL: RoleIn, SUB: RoleIn, XSUB: RoleIn, PUSH: RoleOut, PUB: RoleOut, XPUB: RoleOut,
		REP: RoleInOut, ROUTER: RoleInOut, REQ: RoleInOut, DEALER: RoleInOut, PAIR: RoleInOut, STREAM: RoleInOut,
	}
	for ty, role := range want {
		if got := DefaultRole(ty); got != role {
			t.Errorf("%s: got %s, want %s", ty, got, role)
		}
	}
}

func TestClosest(t *testing.T) {
	tests := []struct {
		name  string
		cands []string
		want  string
	}{
		{"ventilatr", []string{"sink", "ventilator", "worker"}, "ventilator"},
		{"wrker", []string{"sink", "ventilator", "worker"}, "worker"},
		{"PUL", socketTypeNames, "PULL"},
		{"SUBB", socketTypeNames, "SUB"},
		{"xyz", []string{"sink", "ventilator", "worker"}, ""},
		{"a", []string{"b"}, "b"},
		{"ecoh", builtinNames(), "echo"},
		{"base", topKeys, ""},
		{"restrat", []string{"options", "restart", "run"}, "restart"},
		{"transmogrify", builtinNames(), ""},
	}
	for _, tt := range tests {
		got, _ := closest(tt.name, tt.cands)
		if got != tt.want {
			t.Errorf("closest(%q): got %q, want %q", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		a, b string
		want int
	}{{"kitten", "sitting", 3}, {"ecoh", "echo", 1}, {"", "abc", 3}, {"abc", "", 3}, {"ca", "abc", 3}, {"same", "same", 0}} {
		if d := editDistance(tt.a, tt.b); d != tt.want {
			t.Errorf("editDistance(%q, %q): got %d, want %d", tt.a, tt.b, d, tt.want)
		}
	}
}

func TestBuiltinHandlers(t *testing.T) {
	hs := BuiltinHandlers()
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
		if !sort.SliceIsSorted(h.Keys, func(i, j int) bool { return h.Keys[i].Name < h.Keys[j].Name }) {
			t.Errorf("%s: keys not sorted", h.Name)
		}
		for _, k := range h.Keys {
			if k.Doc == "" || k.Kind == 0 {
				t.Errorf("%s.%s: missing doc or kind", h.Name, k.Name)
			}
		}
	}
	want := []string{"count", "echo", "forward", "generate", "lbbroker", "log", "mdbroker", "ppqueue", "proxy", "replay", "upper"}
	if !slices.Equal(names, want) {
		t.Errorf("got %q, want %q", names, want)
	}
}

func TestRegisterBuiltinPanics(t *testing.T) {
	tests := []struct {
		name string
		h    HandlerSchema
		want string
	}{
		{"empty name", HandlerSchema{}, "spec: RegisterBuiltin with an empty name"},
		{"duplicate", HandlerSchema{Name: "echo"}, `spec: duplicate registration of builtin "echo"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if got := fmt.Sprint(recover()); got != tt.want {
					t.Errorf("got panic %q, want %q", got, tt.want)
				}
			}()
			RegisterBuiltin(tt.h)
		})
	}
	if h, _ := builtinHandler("echo"); len(h.Keys) != 1 {
		t.Errorf("echo after a refused registration: got keys %v, want [delay]", h.Keys)
	}
}

// TestNoBuiltinsRegistered: a program that uses spec without importing the
// builtin package is told so, by the loader and by JSONSchema.
func TestNoBuiltinsRegistered(t *testing.T) {
	builtins.Lock()
	saved := builtins.m
	builtins.m = map[string]HandlerSchema{}
	builtins.Unlock()
	defer func() {
		builtins.Lock()
		builtins.m = saved
		builtins.Unlock()
	}()
	got := loadErr(t, "version: 1\nname: t\nnodes:\n  a:\n    handler: echo\n    sockets: {in: {type: PULL, bind: inproc://a}}\n", nil)
	want := "t.yaml:5:14: unknown handler \"echo\" (" + noBuiltins + ")\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	defer func() {
		if got := fmt.Sprint(recover()); !strings.Contains(got, noBuiltins) {
			t.Errorf("JSONSchema: got panic %q, want one naming the builtin package", got)
		}
	}()
	JSONSchema()
}

func TestSocketOptions(t *testing.T) {
	opts := SocketOptions()
	want := map[string]OptionKind{
		"sndhwm": OptInt, "rcvhwm": OptInt, "linger": OptDuration, "immediate": OptBool,
		"router_mandatory": OptBool, "router_handover": OptBool, "conflate": OptBool, "xpub_verbose": OptBool,
		"reconnect_ivl": OptDuration, "reconnect_ivl_max": OptDuration, "heartbeat_ivl": OptDuration,
		"heartbeat_ttl": OptDuration, "heartbeat_timeout": OptDuration, "tcp_keepalive": OptInt,
		"tcp_keepalive_idle": OptInt, "tcp_keepalive_cnt": OptInt, "tcp_keepalive_intvl": OptInt,
		"maxmsgsize": OptInt, "sndtimeo": OptDuration, "rcvtimeo": OptDuration, "sndbuf": OptInt,
		"rcvbuf": OptInt, "backlog": OptInt, "affinity": OptInt, "rate": OptInt, "recovery_ivl": OptDuration,
		"ipv6": OptBool, "handshake_ivl": OptDuration, "connect_timeout": OptDuration, "probe_router": OptBool,
		"req_correlate": OptBool, "req_relaxed": OptBool, "invert_matching": OptBool, "multicast_hops": OptInt,
		"tos": OptInt, "routing_id": OptBytes, "identity": OptBytes,
	}
	for name, kind := range want {
		if got, ok := opts[name]; !ok || got != kind {
			t.Errorf("%s: got %v (known %v), want %v", name, got, ok, kind)
		}
	}
	opts["linger"] = OptBytes
	if SocketOptions()["linger"] != OptDuration {
		t.Error("SocketOptions returned the shared map, not a copy")
	}
}

func TestHandlerLabel(t *testing.T) {
	cases := []struct {
		name string
		h    HandlerRef
		want string
	}{
		{"builtin", HandlerRef{Kind: HandlerBuiltin, Name: "echo"}, "echo"},
		{"exec with flags", HandlerRef{Kind: HandlerExec, Argv: []string{"/bin/sed", "-u", "s/a/b/"}}, "exec sed"},
		{"exec with script", HandlerRef{Kind: HandlerExec, Argv: []string{"/usr/bin/python3", "/src/h/upper.py"}}, "exec python3 upper.py"},
		{"plugin", HandlerRef{Kind: HandlerPlugin, Path: "/src/plugins/upper-v2"}, "plugin upper-v2"},
		{"command", HandlerRef{Kind: HandlerCommand, Argv: []string{"/src/bin/worker"}}, "worker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.Label(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
