package spec

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// SchemaID is the $id of the JSON Schema of the file format.
const SchemaID = "https://github.com/ztopo/ztopo/schema/ztopo.schema.json"

// JSONSchema is the JSON Schema (draft-07) of the file format, for editors
// (yaml-language-server) and other tools. It is generated from the tables
// the decoder itself checks keys against (topKeys, nodeKeys, socketKeys,
// ...), the builtin handlers' schemas and the socket types, so it follows
// the format as the loader reads it; valueSchemas says what each key's
// value looks like, and a test fails for a key it does not describe.
//
// A scalar may always be written as a ${VAR} reference, which the loader
// interpolates before it checks the type: integers, booleans and enums
// accept such a string too.
//
// It panics when no builtin handler is registered: the schema would refuse
// every `handler: NAME` (see RegisterBuiltin).
func JSONSchema() []byte {
	if len(builtinNames()) == 0 {
		panic("spec: JSONSchema: " + noBuiltins)
	}
	node := object(nodeKeys, nil)
	node["allOf"] = handlerConfigs()
	s := map[string]any{
		"$schema":     "http://json-schema.org/draft-07/schema#",
		"$id":         SchemaID,
		"title":       "ztopo topology",
		"description": "A ZeroMQ topology run by ztopo (file format version 1).",
		"type":        "object",
		"required":    []string{"version", "name", "nodes"},
		"definitions": map[string]any{
			"node":     node,
			"socket":   object(socketKeys, nil),
			"defaults": object(defaultsKeys, nil),
			"sync":     object(syncKeys, nil),
			"host":     object(hostKeys, []string{"address"}),
			"security": object(securityKeys, nil),
			"curve":    object(curveKeys, nil),
		},
	}
	top := object(topKeys, nil)
	s["properties"] = top["properties"]
	s["additionalProperties"] = false
	s["patternProperties"] = map[string]any{"^x-": true}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err) // only maps, slices and strings: cannot fail
	}
	return b.Bytes()
}

// undescribedKeys are the keys of the decoder's tables that valueSchemas
// does not describe (the schema lets them have any value).
func undescribedKeys() []string {
	var out []string
	for _, keys := range [][]string{topKeys, defaultsKeys, nodeKeys, socketKeys, syncKeys, hostKeys, securityKeys, curveKeys} {
		for _, k := range keys {
			if _, ok := valueSchemas[k]; !ok {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// object is the schema of a mapping whose keys are those of a decoder table.
func object(keys, required []string) map[string]any {
	props := map[string]any{}
	for _, k := range keys {
		if v, ok := valueSchemas[k]; ok {
			props[k] = v
		} else {
			props[k] = true
		}
	}
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// handlerConfigs constrains config by handler: a builtin's config keys and
// their kinds, nothing else.
func handlerConfigs() []any {
	var out []any
	for _, h := range BuiltinHandlers() {
		props := map[string]any{}
		for _, k := range h.Keys {
			props[k.Name] = withDoc(kindSchema(k.Kind), k.Doc)
		}
		out = append(out, map[string]any{
			"if": map[string]any{
				"properties": map[string]any{"handler": map[string]any{"const": h.Name}},
				"required":   []string{"handler"},
			},
			"then": map[string]any{
				"properties": map[string]any{"config": map[string]any{
					"type": "object", "properties": props, "additionalProperties": false,
				}},
			},
		})
	}
	return out
}

func withDoc(s map[string]any, doc string) map[string]any {
	if doc != "" {
		s["description"] = doc
	}
	return s
}

// varRef is a string holding a ${VAR} reference.
var varRef = map[string]any{"type": "string", "pattern": `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`}

func orVar(s map[string]any) map[string]any { return map[string]any{"anyOf": []any{s, varRef}} }

func kindSchema(k ValueKind) map[string]any {
	switch k {
	case KindInt:
		return orVar(map[string]any{"type": "integer", "minimum": 0})
	case KindBool:
		return orVar(map[string]any{"type": "boolean"})
	case KindDuration:
		return durationSchema()
	case KindStrings:
		return map[string]any{"type": "array", "items": map[string]any{"type": []string{"string", "number", "boolean"}}}
	case KindFloat:
		return orVar(map[string]any{"type": "number"})
	}
	return map[string]any{"type": []string{"string", "number", "boolean"}}
}

func durationSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		map[string]any{"type": "integer", "minimum": 0, "description": "milliseconds"},
		map[string]any{"type": "string", "pattern": `^([0-9.]+(ns|us|µs|ms|s|m|h))+$`},
		varRef,
	}}
}

func enumOrVar(vals ...string) map[string]any {
	return orVar(map[string]any{"type": "string", "enum": vals})
}

func socketTypes() []string {
	var out []string
	for _, t := range []SocketType{PAIR, PUB, SUB, REQ, REP, DEALER, ROUTER, PULL, PUSH, XPUB, XSUB, STREAM} {
		out = append(out, string(t), strings.ToLower(string(t)))
	}
	return out
}

var (
	stringList          = map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	scalar              = map[string]any{"type": []string{"string", "number", "boolean"}}
	restartPolicy       = enumOrVar(string(RestartNo), string(RestartOnFailure), string(RestartAlways))
	socketOptionsSchema = map[string]any{"type": "object", "description": "ZeroMQ socket options by their libzmq names without ZMQ_, lower case (sndhwm, linger, ...); durations may be written 250ms", "additionalProperties": scalar}
	positiveOrVar       = orVar(map[string]any{"type": "integer", "minimum": 1})
	ref                 = func(def string) map[string]any { return map[string]any{"$ref": "#/definitions/" + def} }
)

// builtinEnum encodes as the names of the builtin handlers registered when
// the schema is encoded: valueSchemas is built when this package is
// initialized, before the builtin package registers them.
type builtinEnum struct{}

func (builtinEnum) MarshalJSON() ([]byte, error) { return json.Marshal(builtinNames()) }

// valueSchemas describes the value of each key of the decoder's tables.
var valueSchemas = map[string]any{
	// top level
	"version":  map[string]any{"anyOf": []any{map[string]any{"const": 1}, map[string]any{"const": "1"}}, "description": "format version: 1"},
	"name":     map[string]any{"type": "string", "pattern": nameRE.String(), "description": "the topology name; names ipc paths and the control socket"},
	"vars":     map[string]any{"type": "object", "description": "defaults for ${VAR} interpolation; the environment and env files (.env, --env-file) override them; a command node gets each as ZTOPO_VAR_<NAME>", "additionalProperties": scalar},
	"defaults": ref("defaults"),
	"nodes":    map[string]any{"type": "object", "minProperties": 1, "additionalProperties": ref("node")},
	"hosts":    map[string]any{"type": "object", "description": "the machines of a deployment", "additionalProperties": ref("host")},
	"ports": map[string]any{"type": "object", "description": "where bind: auto picks tcp ports for cross-host edges", "additionalProperties": false,
		"properties": map[string]any{"from": positiveOrVar, "to": positiveOrVar}},
	// nodes and defaults
	"handler": map[string]any{"description": "a builtin name, {exec: [argv...]}, {plugin: path} or {wasm: path.wasm}", "anyOf": []any{
		map[string]any{"type": "string", "enum": builtinEnum{}},
		varRef,
		map[string]any{"type": "object", "additionalProperties": false, "minProperties": 1, "properties": map[string]any{
			"exec": map[string]any{"anyOf": []any{stringList, map[string]any{"type": "string"}}}, "plugin": map[string]any{"type": "string"}, "wasm": map[string]any{"type": "string"}, "codec": map[string]any{"type": "string", "enum": []string{"lines"}},
		}},
	}},
	"command": map[string]any{"description": "an external program that owns its sockets", "anyOf": []any{stringList, map[string]any{"type": "string"}}},
	"config":  map[string]any{"type": "object", "description": "handler settings; each handler documents its keys"},
	"host":    map[string]any{"type": "string", "description": "the host (of hosts) the node runs on"},
	"env": map[string]any{"type": "object", "description": "command and run: process nodes: environment variables of the node's child process (values support ${VAR}); names starting with ZTOPO_ are ztopo's own",
		"propertyNames": map[string]any{"pattern": varNameRE.String(), "not": map[string]any{"pattern": "^ZTOPO_"}}, "additionalProperties": scalar},
	"replicas": positiveOrVar,
	"restart": map[string]any{"anyOf": []any{restartPolicy, map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
		"policy": restartPolicy, "max_restarts": orVar(map[string]any{"type": "integer", "minimum": 0}),
		"within": durationSchema(), "backoff_min": durationSchema(), "backoff_max": durationSchema(),
	}}}},
	"run":     enumOrVar(string(RunGoroutine), string(RunProcess)),
	"sockets": map[string]any{"type": "object", "additionalProperties": ref("socket")},
	"sync":    ref("sync"),
	"options": socketOptionsSchema,
	// sockets and sync
	"type":        enumOrVar(socketTypes()...),
	"bind":        map[string]any{"description": "an endpoint, a list of them, or auto", "anyOf": []any{map[string]any{"type": "string"}, stringList}},
	"connect":     map[string]any{"description": "node.socket, a literal endpoint, or a list mixing both", "anyOf": []any{map[string]any{"type": "string"}, stringList}},
	"subscribe":   map[string]any{"description": "SUB/XSUB: prefixes; \"\" is everything", "anyOf": []any{map[string]any{"type": "string"}, stringList}},
	"identity":    map[string]any{"type": "string"},
	"role":        enumOrVar(string(RoleIn), string(RoleOut), string(RoleInOut)),
	"expect":      positiveOrVar,
	"delivery":    withDoc(enumOrVar(AtMostOnce, AtLeastOnce), "at-least-once: kept until a worker acknowledges it, redelivered otherwise"),
	"ack_timeout": durationSchema(),
	"security":    ref("security"),
	"keys":        map[string]any{"type": "string", "description": "the directory of the CURVE certificates, relative to the file"},
	"require":     enumOrVar("curve"),
	"curve":       ref("curve"),
	"allow":       map[string]any{"description": "client key names, or \"*\"", "anyOf": []any{map[string]any{"type": "string"}, stringList}},
	"client":      map[string]any{"type": "string", "description": "key name: this socket is a CURVE client"},
	"server":      map[string]any{"type": "string", "description": "key name: this socket is a CURVE server"},
	"server_key":  map[string]any{"type": "string", "description": "key name of the server, for a literal endpoint"},
	"address":     map[string]any{"type": "string", "description": "the address peers on other hosts use to reach it"},
}
