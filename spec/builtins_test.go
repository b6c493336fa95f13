package spec_test

// The builtin handlers register their schemas with spec in their init.
// This blank import registers them for every test of this directory: Go
// builds the tests of package spec and of spec_test into one binary.
import _ "github.com/ztopo/ztopo/runtime/handler/builtin"
