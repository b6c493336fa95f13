//go:build ztopo_slowpath

package zbatch

// forceSlow is set by the ztopo_slowpath build tag: every caller then takes
// the fallback that a pebbe release with another layout would get, so that
// `make test` runs the zsock, zbatch, node and engine suites on it too.
const forceSlow = true
