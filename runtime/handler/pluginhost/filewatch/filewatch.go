// Package filewatch tells a handler host when its executable (a plugin, an
// exec script) has new content, so that it can swap to it.
//
// It watches the file's directory rather than the file: installers and
// editors replace a file by renaming a new one over it, which ends a watch
// on the file itself. Events are debounced, and a SHA-256 of the content
// decides whether anything changed, so a touch or a chmod does not swap.
package filewatch

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
)

// DefaultDebounce is how long the file must be quiet before it is read.
const DefaultDebounce = 100 * time.Millisecond

// Start watches path until ctx is done or stop is called, calling changed
// (from the watcher's goroutine, one call at a time) each time the file's
// content differs from what it was at the previous call, or at Start.
// The watch is in place when Start returns. stop waits for the goroutine.
func Start(ctx context.Context, path string, debounce time.Duration, log hclog.Logger, changed func()) (stop func(), err error) {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	path = filepath.Clean(path)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, err
	}
	last, _ := sum(path)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == path {
					timer.Reset(debounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("file watch error", "path", path, "error", err)
			case <-timer.C:
				s, err := sum(path)
				if err != nil {
					// Between a remove and a rename, or a bad
					// install: the next event tries again.
					log.Debug("cannot read watched file", "path", path, "error", err)
					continue
				}
				if s == last {
					continue
				}
				last = s
				log.Info("file changed", "path", path)
				changed()
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}

func sum(path string) ([sha256.Size]byte, error) {
	var s [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return s, err
	}
	copy(s[:], h.Sum(nil))
	return s, nil
}
