//go:build !ztopo_slowpath

package zbatch

// forceSlow is false in a normal build: Fast follows pebbe's layout.
const forceSlow = false
