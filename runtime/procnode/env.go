package procnode

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ztopo/ztopo/spec"
)

// Variables ztopo gives every child (SPEC §1, `command`).
const (
	EnvNode     = "ZTOPO_NODE"     // the instance name, "worker.2"
	EnvReplica  = "ZTOPO_REPLICA"  // its replica index, "2" ("0" without replicas)
	EnvTopology = "ZTOPO_TOPOLOGY" // the topology's name
	// EnvConfig is a command node's config as JSON, set when it has one:
	// spec keeps a command's config as written, for the program to read.
	EnvConfig = "ZTOPO_CONFIG"
)

// SocketEnv is the variable holding a socket's endpoints of one kind
// ("BIND" or "CONNECT"): ZTOPO_<SOCKET>_<KIND>, the socket name upper-cased
// and every character other than an ASCII letter or digit turned into `_`
// (socket `in-2` binds are ZTOPO_IN_2_BIND).
func SocketEnv(socket, kind string) string {
	var b strings.Builder
	b.WriteString("ZTOPO_")
	for _, c := range socket {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	b.WriteString(kind)
	return b.String()
}

// inherited drops from env what ztopo sets itself, so that a ztopo run
// under another ztopo (or a shell that exported one) never passes a stale
// endpoint on: the node variables, and every ZTOPO_*_BIND and
// ZTOPO_*_CONNECT.
func inherited(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == EnvNode, k == EnvReplica, k == EnvTopology, k == EnvConfig, k == EnvSpec, k == EnvLogLevel, k == EnvHold, k == EnvNoWatch:
			continue
		case strings.HasPrefix(k, "ZTOPO_") && (strings.HasSuffix(k, "_BIND") || strings.HasSuffix(k, "_CONNECT")):
			continue
		case strings.HasPrefix(k, "ZTOPO_") && strings.Contains(k, "_CURVE_"):
			continue
		case strings.HasPrefix(k, spec.VarEnvPrefix):
			continue
		}
		out = append(out, kv)
	}
	return out
}

// nodeEnv is env with what the file gives the node's child (its `env`,
// and for a command ZTOPO_VAR_<NAME> for each var: spec.Node.ChildEnv),
// overriding what ztopo inherited, then the node variables every child
// gets.
func nodeEnv(env []string, t *spec.Topology, n *spec.Node) []string {
	out := inherited(env)
	own := n.ChildEnv()
	for _, k := range slices.Sorted(maps.Keys(own)) {
		out = append(out, k+"="+own[k])
	}
	return append(out,
		EnvNode+"="+n.Name,
		EnvReplica+"="+strconv.Itoa(n.Replica),
		EnvTopology+"="+t.Name,
	)
}

// commandEnv is a command node's environment: env, the node variables, its
// config, each socket's endpoints and, for a socket with curve, its key
// material (never a secret key, only the path of its certificate):
//
//	ZTOPO_<SOCKET>_CURVE_PUBLIC       the socket's public key (Z85)
//	ZTOPO_<SOCKET>_CURVE_SECRET_FILE  the absolute path of its NAME.key_secret
//	ZTOPO_<SOCKET>_CURVE_SERVER       a client: the server's public key (Z85)
//	ZTOPO_<SOCKET>_CURVE_ALLOW        a server: the allowed client keys (Z85,
//	                                  comma-separated; Z85 has no comma), or *
//
// The program owns its sockets: it must set them up, and run its own ZAP
// handler on a CURVE server, itself.
func commandEnv(env []string, t *spec.Topology, n *spec.Node) ([]string, error) {
	out := nodeEnv(env, t, n)
	if len(n.Config) > 0 {
		b, err := json.Marshal(n.Config)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		out = append(out, EnvConfig+"="+string(b))
	}
	owner := map[string]string{}
	for _, s := range n.Sockets {
		for _, kv := range []struct {
			kind string
			eps  []string
		}{{"BIND", s.Bind}, {"CONNECT", s.Connect}} {
			name := SocketEnv(s.Name, kv.kind)
			if prev, dup := owner[name]; dup && prev != s.Name {
				return nil, fmt.Errorf("sockets %q and %q would both be given %s; rename one", prev, s.Name, name)
			}
			owner[name] = s.Name
			if len(kv.eps) > 0 {
				out = append(out, name+"="+strings.Join(kv.eps, ","))
			}
		}
		if c := s.Curve; c != nil {
			out = append(out,
				SocketEnv(s.Name, "CURVE_PUBLIC")+"="+c.Public,
				SocketEnv(s.Name, "CURVE_SECRET_FILE")+"="+c.SecretFile)
			if c.Server {
				allow := make([]string, 0, len(c.Allow))
				for _, k := range c.Allow {
					allow = append(allow, k.Public)
				}
				if c.AllowAny {
					allow = []string{"*"}
				}
				out = append(out, SocketEnv(s.Name, "CURVE_ALLOW")+"="+strings.Join(allow, ","))
			} else {
				out = append(out, SocketEnv(s.Name, "CURVE_SERVER")+"="+c.ServerKey)
			}
		}
	}
	return out, nil
}
