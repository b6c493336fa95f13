package main

import (
	"io"

	"github.com/ztopo/ztopo/spec"
)

const schemaUsage = `usage: ztopo schema

Prints the JSON Schema (draft-07) of the topology file format, for editors:
with the YAML language server (VS Code's YAML extension, Neovim, Helix,
...), put this first line in a topology file

  # yaml-language-server: $schema=PATH/ztopo.schema.json

where PATH/ztopo.schema.json is the output of 'ztopo schema' (or
schema/ztopo.schema.json of the repository), and the editor completes
keys, builtin handler names and their config keys, and marks unknown keys.
The schema is generated from the loader's own tables; 'ztopo validate'
checks more (references, endpoints, types of peers).

Exit status: 0 ok, 2 wrong usage.
`

func runSchema(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("schema")
	if code, ok := parseFlags(fs, "schema", schemaUsage, args, stdout, stderr); !ok {
		return code
	}
	stdout.Write(spec.JSONSchema())
	return exitOK
}
