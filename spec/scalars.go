package spec

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

var socketTypeNames = []string{"DEALER", "PAIR", "PUB", "PULL", "PUSH", "REP", "REQ", "ROUTER", "STREAM", "SUB", "XPUB", "XSUB"}

// ParseSocketType reads a socket type: one of PAIR PUB SUB REQ REP DEALER
// ROUTER PULL PUSH XPUB XSUB STREAM, in any case (`push`, `Push`).
func ParseSocketType(s string) (SocketType, error) {
	u := strings.ToUpper(s)
	if contains(socketTypeNames, u) {
		return SocketType(u), nil
	}
	return "", fmt.Errorf("unknown socket type %q", s)
}

// ParseRole reads a socket role: in, out or inout.
func ParseRole(s string) (Role, error) {
	return oneOf(s, "role", RoleIn, RoleOut, RoleInOut)
}

// ParseRunMode reads where a node runs: goroutine or process.
func ParseRunMode(s string) (RunMode, error) {
	return oneOf(s, "run mode", RunGoroutine, RunProcess)
}

// ParseRestartPolicy reads the short form of a restart policy: no,
// on-failure or always. (The long form is a map, read by the resolver:
// {policy, max_restarts, within, backoff_min, backoff_max}.)
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	return oneOf(s, "restart policy", RestartNo, RestartOnFailure, RestartAlways)
}

// oneOf reads s as one of want (two or more), written exactly; the error
// names what s is and lists want: `unknown role "x": want in, out or inout`.
func oneOf[T ~string](s, what string, want ...T) (T, error) {
	if slices.Contains(want, T(s)) {
		return T(s), nil
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = string(w)
	}
	last := len(names) - 1
	return "", fmt.Errorf("unknown %s %q: want %s or %s", what, s, strings.Join(names[:last], ", "), names[last])
}

// ParseDuration reads a duration: Go's syntax ("250ms", "5s", "1m30s",
// "1.5s") or a plain integer, taken as milliseconds since that is the unit
// of every libzmq time option. It does not judge the sign; callers do.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > math.MaxInt64/int64(time.Millisecond) || n < math.MinInt64/int64(time.Millisecond) {
			return 0, fmt.Errorf("duration %q is out of range", s)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want e.g. 250ms, 5s, 1m, or an integer of milliseconds", s)
	}
	return d, nil
}

// Endpoint is a parsed ZeroMQ endpoint.
type Endpoint struct {
	Transport string // inproc, ipc, tcp, pgm, epgm
	Address   string // everything after "://"
	Host      string // tcp: the host as written (brackets kept for IPv6), or "*"
	Port      string // tcp: the port, or "*" for an ephemeral port (bind only)
}

func (e Endpoint) String() string { return e.Transport + "://" + e.Address }

// maxIPCPath is the longest ipc path a unix socket takes: sun_path holds 108
// bytes on Linux, one of which is the terminating NUL, and libzmq wants one
// more spare.
const maxIPCPath = 106

// ParseEndpoint reads an endpoint: inproc://name, ipc://path (shorter than
// 107 bytes; @name for the abstract namespace), tcp://host:port (host a
// name, an IPv4 address, [IPv6], * or an interface; port 1-65535, or * to
// bind an ephemeral port; a connect may name a source first:
// tcp://src;host:port), pgm:// and epgm:// (iface;group:port).
func ParseEndpoint(s string, bind bool) (Endpoint, error) {
	scheme, addr, ok := strings.Cut(s, "://")
	if !ok {
		return Endpoint{}, fmt.Errorf("malformed endpoint %q: want transport://address (tcp, ipc, inproc, pgm, epgm)", s)
	}
	e := Endpoint{Transport: scheme, Address: addr}
	switch scheme {
	case "inproc":
		if addr == "" {
			return e, fmt.Errorf("malformed endpoint %q: inproc needs a name", s)
		}
	case "ipc":
		if addr == "" {
			return e, fmt.Errorf("malformed endpoint %q: ipc needs a path", s)
		}
		if len(addr) > maxIPCPath {
			return e, fmt.Errorf("ipc path of %q is %d bytes, longer than a unix socket takes (%d)", s, len(addr), maxIPCPath)
		}
	case "tcp":
		hostport := addr
		if !bind {
			if i := strings.LastIndexByte(addr, ';'); i >= 0 {
				hostport = addr[i+1:]
			}
		}
		host, port, err := splitHostPort(hostport)
		if err != nil {
			return e, fmt.Errorf("malformed endpoint %q: %v", s, err)
		}
		e.Host, e.Port = host, port
		if port == "*" {
			if !bind {
				return e, fmt.Errorf("malformed endpoint %q: a connect needs a port number", s)
			}
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return e, fmt.Errorf("malformed endpoint %q: port %q is not a number from 1 to 65535", s, port)
		}
		if host == "*" && !bind {
			return e, fmt.Errorf("malformed endpoint %q: a connect needs a host, not *", s)
		}
	case "pgm", "epgm":
		iface, group, ok := strings.Cut(addr, ";")
		if !ok || iface == "" || group == "" {
			return e, fmt.Errorf("malformed endpoint %q: want %s://interface;group:port", s, scheme)
		}
		if _, port, err := splitHostPort(group); err != nil {
			return e, fmt.Errorf("malformed endpoint %q: %v", s, err)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return e, fmt.Errorf("malformed endpoint %q: port %q is not a number from 1 to 65535", s, port)
		}
	default:
		return e, fmt.Errorf("unknown transport %q in endpoint %q: want tcp, ipc, inproc, pgm or epgm", scheme, s)
	}
	return e, nil
}

// splitHostPort splits host:port, keeping the brackets of an IPv6 host.
func splitHostPort(s string) (host, port string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("missing :port")
	}
	host, port = s[:i], s[i+1:]
	if host == "" {
		return "", "", fmt.Errorf("missing host")
	}
	if port == "" {
		return "", "", fmt.Errorf("missing port")
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") || net.ParseIP(host[1:len(host)-1]) == nil {
			return "", "", fmt.Errorf("bad IPv6 host %q", host)
		}
	} else if strings.Contains(host, ":") {
		return "", "", fmt.Errorf("an IPv6 host must be in brackets, e.g. [::1]")
	}
	return host, port, nil
}
