package spec

import "testing"

func TestMeet(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"star bind, loopback connect", "tcp://*:5555", "tcp://127.0.0.1:5555", true},
		{"star bind, localhost connect", "tcp://*:5555", "tcp://localhost:5555", true},
		{"star bind, LOCALHOST connect", "tcp://*:5555", "tcp://LOCALHOST:5555", true},
		{"0.0.0.0 bind, loopback connect", "tcp://0.0.0.0:5555", "tcp://127.0.0.1:5555", true},
		{"star and 0.0.0.0 binds clash", "tcp://*:5555", "tcp://0.0.0.0:5555", true},
		{"localhost bind, loopback connect", "tcp://localhost:5555", "tcp://127.0.0.1:5555", true},
		{"other port", "tcp://*:5555", "tcp://127.0.0.1:5556", false},
		{"other loopback address", "tcp://127.0.0.1:5555", "tcp://127.0.0.2:5555", false},
		{"IPv6 wildcard, IPv6 loopback", "tcp://[::]:5555", "tcp://[::1]:5555", true},
		{"IPv6 loopback written long", "tcp://[::1]:5555", "tcp://[0:0:0:0:0:0:0:1]:5555", true},
		{"IPv6 wildcard, IPv4 loopback", "tcp://[::]:5555", "tcp://127.0.0.1:5555", false},
		{"IPv4 wildcard, IPv6 loopback", "tcp://*:5555", "tcp://[::1]:5555", false},
		{"connect with a source", "tcp://127.0.0.2;127.0.0.1:5555", "tcp://*:5555", true},
		{"named host", "tcp://sink.internal:5555", "tcp://sink.internal:5555", true},
		{"named host in capitals", "tcp://Sink.Internal:5555", "tcp://sink.internal:5555", true},
		{"named host and loopback", "tcp://sink.internal:5555", "tcp://127.0.0.1:5555", false},
		{"ephemeral binds", "tcp://*:*", "tcp://*:*", false},
		{"ephemeral bind and a connect", "tcp://127.0.0.1:*", "tcp://127.0.0.1:5555", false},
		{"ipc same path", "ipc:///run/x.sock", "ipc:///run/x.sock", true},
		{"ipc path cleaned", "ipc:///run/a/../x.sock", "ipc:///run//x.sock", true},
		{"ipc other path", "ipc:///run/x.sock", "ipc:///run/y.sock", false},
		{"ipc abstract", "ipc://@x", "ipc://@x", true},
		{"ipc abstract and a path", "ipc://@x", "ipc://x", false},
		{"inproc same name", "inproc://a/b", "inproc://a/b", true},
		{"inproc other name", "inproc://a", "inproc://b", false},
		{"inproc and ipc", "inproc://x", "ipc://x", false},
		{"tcp and ipc", "tcp://127.0.0.1:5555", "ipc://127.0.0.1:5555", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Meet(tt.a, tt.b); got != tt.want {
				t.Errorf("Meet(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := Meet(tt.b, tt.a); got != tt.want {
				t.Errorf("Meet(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

func TestConnectSide(t *testing.T) {
	tests := []struct{ bind, want string }{
		{"tcp://*:5555", "tcp://127.0.0.1:5555"},
		{"tcp://0.0.0.0:5555", "tcp://127.0.0.1:5555"},
		{"tcp://[::]:5555", "tcp://[::1]:5555"},
		{"tcp://[::1]:5555", "tcp://[::1]:5555"},
		{"tcp://localhost:5555", "tcp://localhost:5555"},
		{"tcp://10.0.0.1:5555", "tcp://10.0.0.1:5555"},
		{"ipc:///run/x.sock", "ipc:///run/x.sock"},
		{"inproc://x", "inproc://x"},
	}
	for _, tt := range tests {
		got := ConnectSide(tt.bind)
		if got != tt.want {
			t.Errorf("ConnectSide(%q) = %q, want %q", tt.bind, got, tt.want)
		}
		if !Meet(tt.bind, got) {
			t.Errorf("Meet(%q, ConnectSide) = false, want true", tt.bind)
		}
	}
}
