//go:build !linux

package zbatch

// ztopo runs on Linux only: eventfd(2) wakes node goroutines, the
// parent-death signal (PR_SET_PDEATHSIG) ends process nodes with ztopo, and
// flock(2) guards the runtime directory. Every ztopo binary imports this
// package, so a build for another system stops here, on this name.
var _ = ztopoRunsOnLinuxOnly
