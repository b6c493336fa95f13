package zsock

import (
	"fmt"
	"sort"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/spec"
)

// option is one settable socket option: its kind and the pebbe/zmq4 setter
// that applies it.
type option struct {
	kind spec.OptionKind
	set  func(z *zmq4.Socket, v any) error
}

// options maps libzmq option names (without ZMQ_, lower case) to setters.
// It is the single source of truth of what a topology may set; spec's
// validation keeps its own table, and a test checks both agree.
var options = map[string]option{
	"affinity":                 intOpt(func(z *zmq4.Socket, n int) error { return z.SetAffinity(uint64(n)) }),
	"backlog":                  intOpt((*zmq4.Socket).SetBacklog),
	"conflate":                 boolOpt((*zmq4.Socket).SetConflate),
	"connect_rid":              bytesOpt((*zmq4.Socket).SetConnectRid),
	"connect_routing_id":       bytesOpt((*zmq4.Socket).SetConnectRid),
	"connect_timeout":          durOpt((*zmq4.Socket).SetConnectTimeout),
	"curve_publickey":          bytesOpt((*zmq4.Socket).SetCurvePublickey),
	"curve_secretkey":          bytesOpt((*zmq4.Socket).SetCurveSecretkey),
	"curve_server":             flagOpt((*zmq4.Socket).SetCurveServer),
	"curve_serverkey":          bytesOpt((*zmq4.Socket).SetCurveServerkey),
	"gssapi_plaintext":         boolOpt((*zmq4.Socket).SetGssapiPlaintext),
	"gssapi_principal":         bytesOpt((*zmq4.Socket).SetGssapiPrincipal),
	"gssapi_server":            boolOpt((*zmq4.Socket).SetGssapiServer),
	"gssapi_service_principal": bytesOpt((*zmq4.Socket).SetGssapiServicePrincipal),
	"handshake_ivl":            durOpt((*zmq4.Socket).SetHandshakeIvl),
	"heartbeat_ivl":            durOpt((*zmq4.Socket).SetHeartbeatIvl),
	"heartbeat_timeout":        durOpt((*zmq4.Socket).SetHeartbeatTimeout),
	"heartbeat_ttl":            durOpt((*zmq4.Socket).SetHeartbeatTtl),
	"identity":                 bytesOpt((*zmq4.Socket).SetIdentity),
	"immediate":                boolOpt((*zmq4.Socket).SetImmediate),
	"invert_matching":          flagOpt((*zmq4.Socket).SetInvertMatching),
	"ipv6":                     boolOpt((*zmq4.Socket).SetIpv6),
	"linger":                   durOpt((*zmq4.Socket).SetLinger),
	"maxmsgsize":               intOpt(func(z *zmq4.Socket, n int) error { return z.SetMaxmsgsize(int64(n)) }),
	"multicast_hops":           intOpt((*zmq4.Socket).SetMulticastHops),
	"multicast_maxtpdu":        intOpt((*zmq4.Socket).SetMulticastMaxtpdu),
	"plain_password":           bytesOpt((*zmq4.Socket).SetPlainPassword),
	"plain_server":             flagOpt((*zmq4.Socket).SetPlainServer),
	"plain_username":           bytesOpt((*zmq4.Socket).SetPlainUsername),
	"probe_router":             flagOpt((*zmq4.Socket).SetProbeRouter),
	"rate":                     intOpt((*zmq4.Socket).SetRate),
	"rcvbuf":                   intOpt((*zmq4.Socket).SetRcvbuf),
	"rcvhwm":                   intOpt((*zmq4.Socket).SetRcvhwm),
	"rcvtimeo":                 durOpt((*zmq4.Socket).SetRcvtimeo),
	"reconnect_ivl":            durOpt((*zmq4.Socket).SetReconnectIvl),
	"reconnect_ivl_max":        durOpt((*zmq4.Socket).SetReconnectIvlMax),
	"recovery_ivl":             durOpt((*zmq4.Socket).SetRecoveryIvl),
	"req_correlate":            flagOpt((*zmq4.Socket).SetReqCorrelate),
	"req_relaxed":              flagOpt((*zmq4.Socket).SetReqRelaxed),
	"router_handover":          boolOpt((*zmq4.Socket).SetRouterHandover),
	"router_mandatory":         flagOpt((*zmq4.Socket).SetRouterMandatory),
	"routing_id":               bytesOpt((*zmq4.Socket).SetIdentity),
	"sndbuf":                   intOpt((*zmq4.Socket).SetSndbuf),
	"sndhwm":                   intOpt((*zmq4.Socket).SetSndhwm),
	"sndtimeo":                 durOpt((*zmq4.Socket).SetSndtimeo),
	"socks_proxy":              bytesOpt((*zmq4.Socket).SetSocksProxy),
	"stream_notify":            intOpt((*zmq4.Socket).SetStreamNotify),
	"tcp_keepalive":            intOpt((*zmq4.Socket).SetTcpKeepalive),
	"tcp_keepalive_cnt":        intOpt((*zmq4.Socket).SetTcpKeepaliveCnt),
	"tcp_keepalive_idle":       intOpt((*zmq4.Socket).SetTcpKeepaliveIdle),
	"tcp_keepalive_intvl":      intOpt((*zmq4.Socket).SetTcpKeepaliveIntvl),
	"tcp_maxrt":                durOpt((*zmq4.Socket).SetTcpMaxrt),
	"tos":                      intOpt((*zmq4.Socket).SetTos),
	"xpub_manual":              flagOpt((*zmq4.Socket).SetXpubManual),
	"xpub_nodrop":              boolOpt((*zmq4.Socket).SetXpubNodrop),
	"xpub_verbose":             flagOpt((*zmq4.Socket).SetXpubVerbose),
	"xpub_verboser":            flagOpt((*zmq4.Socket).SetXpubVerboser),
	"xpub_welcome_msg":         bytesOpt((*zmq4.Socket).SetXpubWelcomeMsg),
	"zap_domain":               bytesOpt((*zmq4.Socket).SetZapDomain),
}

// OptionNames lists every option Open can set, sorted.
func OptionNames() []string {
	names := make([]string, 0, len(options))
	for n := range options {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OptionKind returns the kind of a named option.
func OptionKind(name string) (spec.OptionKind, bool) {
	o, ok := options[name]
	return o.kind, ok
}

// SetOption applies one option by its libzmq name. v is an int (durations in
// milliseconds, booleans 0/1; int64 and time.Duration are accepted too) or a
// string for byte-valued options.
func SetOption(z *zmq4.Socket, name string, v any) error {
	o, ok := options[name]
	if !ok {
		return fmt.Errorf("unknown socket option %q", name)
	}
	if err := o.set(z, v); err != nil {
		return fmt.Errorf("option %s=%v: %w", name, v, err)
	}
	return nil
}

func asInt(v any) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case uint64:
		return int(n), nil
	case float64:
		if n != float64(int(n)) {
			return 0, fmt.Errorf("want an integer, got %v", n)
		}
		return int(n), nil
	case bool:
		if n {
			return 1, nil
		}
		return 0, nil
	case time.Duration:
		return int(n / time.Millisecond), nil
	}
	return 0, fmt.Errorf("want an integer, got %T", v)
}

func intOpt(f func(*zmq4.Socket, int) error) option {
	return option{spec.OptInt, func(z *zmq4.Socket, v any) error {
		n, err := asInt(v)
		if err != nil {
			return err
		}
		return f(z, n)
	}}
}

// flagOpt is a boolean option whose pebbe setter takes an int.
func flagOpt(f func(*zmq4.Socket, int) error) option {
	o := intOpt(f)
	o.kind = spec.OptBool
	return o
}

func boolOpt(f func(*zmq4.Socket, bool) error) option {
	return option{spec.OptBool, func(z *zmq4.Socket, v any) error {
		n, err := asInt(v)
		if err != nil {
			return err
		}
		return f(z, n != 0)
	}}
}

// durOpt adapts pebbe's time.Duration setters: a topology gives
// milliseconds, and pebbe maps the Duration -1 (not -1ms) to libzmq's -1.
func durOpt(f func(*zmq4.Socket, time.Duration) error) option {
	return option{spec.OptDuration, func(z *zmq4.Socket, v any) error {
		if d, ok := v.(time.Duration); ok {
			if d < 0 {
				d = -1
			}
			return f(z, d)
		}
		n, err := asInt(v)
		if err != nil {
			return err
		}
		if n < 0 {
			return f(z, -1)
		}
		return f(z, time.Duration(n)*time.Millisecond)
	}}
}

func bytesOpt(f func(*zmq4.Socket, string) error) option {
	return option{spec.OptBytes, func(z *zmq4.Socket, v any) error {
		switch s := v.(type) {
		case string:
			return f(z, s)
		case []byte:
			return f(z, string(s))
		}
		return fmt.Errorf("want a string, got %T", v)
	}}
}
