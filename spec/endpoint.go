package spec

import (
	"net"
	"path/filepath"
	"strings"
)

// This file is the one place that says whether two endpoints meet: whether
// a connect reaches a bind, and whether two binds clash. The loader, the
// graph and the engine's shutdown order all ask it, so that they agree on
// which sockets form one edge.
//
// The rules, for endpoints on one machine:
//   - tcp: a wildcard bind (`*`, `0.0.0.0`) is reached at `127.0.0.1` and
//     `localhost`; `[::]` at `[::1]` (ztopo connects references to `[::]`
//     over IPv6). Host names are compared without case; any other host
//     must be written the same way. An ephemeral port (`:*`) meets nothing:
//     each such bind gets its own port. The source part of a connect
//     (`tcp://src;host:port`) does not change where it goes.
//   - ipc: the same path, after filepath.Clean (`@name`, the abstract
//     namespace, as written).
//   - inproc: the same name.
//   - pgm, epgm: the same address as written.

// ConnectSide returns the endpoint a peer on the same machine connects to
// in order to reach a socket bound at bind: a wildcard tcp host becomes the
// loopback address of its family (`tcp://*:5555` → `tcp://127.0.0.1:5555`,
// `tcp://[::]:5555` → `tcp://[::1]:5555`); every other endpoint is itself.
func ConnectSide(bind string) string {
	e, err := ParseEndpoint(bind, true)
	if err != nil || e.Transport != "tcp" {
		return bind
	}
	switch e.Host {
	case "*", "0.0.0.0":
		return "tcp://127.0.0.1:" + e.Port
	case "[::]":
		return "tcp://[::1]:" + e.Port
	}
	return bind
}

// EndpointKey is the canonical form of where ep goes on one machine: two
// endpoints meet when their keys are equal and neither uses an ephemeral
// port (see Meet). Both bind and connect forms are accepted; an endpoint
// that does not parse is its own key.
func EndpointKey(ep string) string {
	// The connect form first: it knows the source part; a wildcard host
	// or port only parses as a bind.
	e, err := ParseEndpoint(ep, false)
	if err != nil {
		e2, err2 := ParseEndpoint(ep, true)
		if err2 != nil {
			return ep
		}
		e = e2
	}
	switch e.Transport {
	case "ipc":
		if strings.HasPrefix(e.Address, "@") {
			return ep
		}
		return "ipc://" + filepath.Clean(e.Address)
	case "tcp":
		return "tcp://" + loopbackHost(e.Host) + ":" + e.Port
	}
	return ep
}

// loopbackHost maps the hosts that reach a local listener on every address
// of a family to that family's loopback, and lower-cases names.
func loopbackHost(host string) string {
	h := strings.ToLower(host)
	switch h {
	case "*", "localhost":
		return "127.0.0.1"
	}
	bare := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	ip := net.ParseIP(bare)
	switch {
	case ip == nil:
		return h
	case ip.To4() != nil && (ip.IsUnspecified() || ip.Equal(net.IPv4(127, 0, 0, 1))):
		return "127.0.0.1"
	case ip.To4() == nil && (ip.IsUnspecified() || ip.Equal(net.IPv6loopback)):
		return "[::1]"
	case ip.To4() == nil:
		return "[" + ip.String() + "]"
	}
	return ip.String()
}

// Meet reports whether endpoints a and b, on one machine, are the same
// listener: a connect at a reaches a bind at b, or two binds at a and b
// clash. `tcp://*:5555` meets `tcp://localhost:5555` and
// `tcp://127.0.0.1:5555`; `tcp://[::]:5555` meets `tcp://[::1]:5555`;
// `ipc:///run/a/../x.sock` meets `ipc:///run/x.sock`; `inproc://x` meets
// only `inproc://x`; an ephemeral bind (`tcp://*:*`) meets nothing.
func Meet(a, b string) bool {
	if ephemeral(a) || ephemeral(b) {
		return false
	}
	return EndpointKey(a) == EndpointKey(b)
}

// ephemeral reports whether ep binds a port the system picks.
func ephemeral(ep string) bool {
	e, err := ParseEndpoint(ep, true)
	return err == nil && e.Transport == "tcp" && e.Port == "*"
}
