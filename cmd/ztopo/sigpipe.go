package main

import (
	"os"
	"os/signal"
	"syscall"
)

// survivePipes keeps a closed stdout or stderr (`ztopo up … | head -1`)
// from killing the process: Go dies of SIGPIPE on a write to a broken pipe
// on fd 1 or 2 unless SIGPIPE is caught, and a topology killed that way
// stops nothing in order and leaves its runtime directory behind. Caught,
// such a write fails with EPIPE and the line is lost, nothing else.
// Caught rather than ignored: an ignored signal stays ignored in the
// children ztopo starts, a caught one is reset to the default in them.
// The returned func stops catching it.
func survivePipes() (stop func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGPIPE)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-c:
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(c)
		close(done)
	}
}
