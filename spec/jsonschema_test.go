package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// schemaFile is the schema as committed, for editors that read it from
// the repository (the first line of every file of topologies/).
const schemaFile = "../schema/ztopo.schema.json"

// TestJSONSchemaCommitted: the committed schema is what JSONSchema
// generates; go test ./spec -update rewrites it.
func TestJSONSchemaCommitted(t *testing.T) {
	got := JSONSchema()
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what JSONSchema generates; run go test ./spec -update", schemaFile)
	}
}

// TestJSONSchemaDescribesEveryKey: a key the decoder accepts has a value
// schema; one added to the decoder without it fails here.
func TestJSONSchemaDescribesEveryKey(t *testing.T) {
	if u := undescribedKeys(); len(u) > 0 {
		t.Errorf("keys without a value schema in valueSchemas: %v", u)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlJSON is a YAML document as the JSON value a schema validator reads.
func yamlJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestJSONSchemaValidates: every file of topologies/ and of testdata/good
// is valid, and each of the bad documents is not, for the reason given.
func TestJSONSchemaValidates(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob("../topologies/*.yaml")
	good, _ := filepath.Glob("testdata/good/*.yaml")
	files = append(files, good...)
	if len(files) < 10 {
		t.Fatalf("got %d topology files, want the catalogue", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlJSON(t, data)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	base := "version: 1\nname: demo\nnodes:\n  fwd:\n"
	bad := []struct{ name, doc, want string }{
		{"unknown top key", "version: 1\nname: demo\nnodse: {}\nnodes: {a: {handler: echo}}\n", "nodse"},
		{"unknown node key", base + "    handlr: forward\n", "handlr"},
		{"unknown handler", base + "    handler: fowrard\n", "fowrard"},
		{"socket type", base + "    handler: forward\n    sockets: {in: {type: PULLL}}\n", "PULLL"},
		{"config key of generate", "version: 1\nname: demo\nnodes:\n  gen:\n    handler: generate\n    config: {cuont: 5}\n", "cuont"},
		{"config kind", "version: 1\nname: demo\nnodes:\n  gen:\n    handler: generate\n    config: {count: many}\n", "count"},
		{"bad name", "version: 1\nname: Demo\nnodes: {a: {handler: echo}}\n", "name"},
		{"no nodes", "version: 1\nname: demo\n", "nodes"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			err := s.Validate(yamlJSON(t, []byte(c.doc)))
			if err == nil {
				t.Fatalf("valid, want an error about %s", c.want)
			}
			if !strings.Contains(strings.ReplaceAll(err.Error(), "'", ""), c.want) && !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want it to mention %s", err, c.want)
			}
		})
	}
	// ${VAR} where an integer or an enum goes: valid.
	if err := s.Validate(yamlJSON(t, []byte(base+"    replicas: ${WORKERS:-2}\n    run: ${RUN}\n    handler: forward\n"))); err != nil {
		t.Errorf("${VAR} scalars: %v", err)
	}
}
