// Package spec reads topology files: it is the only package that knows YAML.
//
// A load has three steps, each reporting every problem it finds with a
// position, never stopping at the first:
//
//  1. ReadFile walks the yaml.Node tree (never unmarshalling into tagged
//     structs, which stops at the first error and loses columns) into a
//     File, the file as written: duplicate and unknown keys are reported
//     with a did-you-mean, aliases are expanded within limits, a value
//     keeps its position.
//  2. Resolve turns the File into a Topology: ${VAR} interpolation, defaults
//     merged once, replicas expanded, node.socket references and `bind:
//     auto` turned into endpoints, relative paths made absolute, handler
//     config converted to Go types. Defaults are applied here and only here,
//     so that Node.Equal is a sound "changed?" test for reload.
//  3. The same pass validates what needs the whole picture: socket type
//     pairs, PAIR peers, endpoints bound twice, inproc across processes,
//     sync partners.
//
// Load and Parse do all three and return the Topology only when there are
// no errors. Diff compares two Topologies into the Plan of a reload.
//
// A file may also hold top-level keys starting
// with "x-", ignored, as a place for YAML anchors that nodes merge in
// (`<<: *common`).
package spec
