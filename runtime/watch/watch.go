// Package watch tells when the content of a file changes, the way editors,
// `mv` and `git checkout` change files.
//
// It watches each file's directory rather than the file: an editor that
// saves by writing a new file and renaming it over the old one (vim, most
// IDEs), `mv other file` and `git checkout` replace the file's inode, and a
// watch on the old inode would never fire again. Events are filtered by
// name, debounced (a burst of writes is one change), and a change is only
// reported when a SHA-256 of the content differs from the last one seen:
// `touch` and `chmod` are not changes. A deleted file is not a change
// either; the watcher waits for it to come back and compares its content
// then. A watched directory that is itself removed or renamed is watched
// again once a directory appears under its name. A burst that never pauses
// is looked at every second at least (maxWait). A watched symlink is looked
// at on any event in its directory: Kubernetes updates a mounted ConfigMap
// by swapping a `..data` symlink the watched name points through.
package watch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
)

// DefaultDebounce is how long a file must be quiet after an event before
// its content is compared: long enough to fold an editor's save (truncate,
// write, rename, chmod) into one change, short enough to feel immediate.
const DefaultDebounce = 100 * time.Millisecond

// maxWait bounds the debounce: a file written without a pause (every 20 ms
// for minutes) is still looked at within about a second of its first
// write, then again a second later, and so on; each look compares content.
const maxWait = time.Second

// rewatchInterval is how often a lost directory is looked for again; there
// is nothing to watch for the appearance of a directory whose parent may be
// gone too.
const rewatchInterval = 250 * time.Millisecond

// Option configures a Watcher.
type Option func(*Watcher)

// WithDebounce sets the quiet period after the last event of a burst;
// d <= 0 keeps DefaultDebounce.
func WithDebounce(d time.Duration) Option {
	return func(w *Watcher) {
		if d > 0 {
			w.debounce = d
		}
	}
}

// file is one watched file.
type file struct {
	dir, base string
	sum       [sha256.Size]byte
	known     bool // sum holds the content last seen
	present   bool // the file existed at the last look
}

// Watcher reports content changes of a set of files on Events.
//
// Lifecycle: New, then Add/Remove at any time (also while running), then
// Run once; Events is closed when Run returns. Nothing is reported before
// Run, but changes made after New (or after Add, for an added file) are not
// lost: the content compared against is the one seen when the file was
// added. Callers that read the file themselves should therefore add it
// before reading it.
type Watcher struct {
	logger   hclog.Logger
	debounce time.Duration
	fsw      *fsnotify.Watcher
	events   chan string

	mu      sync.Mutex
	files   map[string]*file // by absolute path
	dirs    map[string]int   // watched directory -> number of files in it
	lost    map[string]bool  // directories whose watch was lost
	running bool
	closed  bool
}

// New returns a Watcher for path. The file may be missing (its first
// appearance is a change); its directory must exist.
func New(path string, logger hclog.Logger, opts ...Option) (*Watcher, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	w := &Watcher{
		logger:   logger,
		debounce: DefaultDebounce,
		fsw:      fsw,
		events:   make(chan string),
		files:    map[string]*file{},
		dirs:     map[string]int{},
		lost:     map[string]bool{},
	}
	for _, o := range opts {
		o(w)
	}
	if err := w.Add(path); err != nil {
		fsw.Close()
		return nil, err
	}
	return w, nil
}

// Events delivers the absolute path of a file each time its content has
// changed. A file that changes again before its previous event was received
// is reported once (latest value): a slow reader sees every changed path,
// never a backlog. Run never blocks on a reader.
func (w *Watcher) Events() <-chan string { return w.events }

// Add watches path too, with the same semantics as the first file. Adding
// a path that is already watched does nothing.
func (w *Watcher) Add(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("watch %s: watcher closed", path)
	}
	if _, ok := w.files[abs]; ok {
		return nil
	}
	dir, base := filepath.Split(abs)
	dir = filepath.Clean(dir)
	if w.dirs[dir] == 0 {
		// The directory watch comes first, so that a change between reading
		// the content below and the start of Run is still seen.
		if err := w.fsw.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", path, err)
		}
	}
	w.dirs[dir]++
	f := &file{dir: dir, base: base}
	w.look(abs, f)
	w.files[abs] = f
	w.logger.Debug("watching file", "path", abs)
	return nil
}

// Remove stops watching path. An event for it already on its way may still
// be delivered.
func (w *Watcher) Remove(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("unwatch %s: %w", path, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f, ok := w.files[abs]
	if !ok {
		return nil
	}
	delete(w.files, abs)
	w.dirs[f.dir]--
	if w.dirs[f.dir] == 0 {
		delete(w.dirs, f.dir)
		if !w.lost[f.dir] && !w.closed {
			_ = w.fsw.Remove(f.dir) // the directory may be gone already
		}
		delete(w.lost, f.dir)
	}
	return nil
}

// look reads the file and records its content; it reports whether the
// content differs from the last one seen (Add ignores the answer: the
// first look is the baseline). Called with w.mu held.
func (w *Watcher) look(path string, f *file) bool {
	sum, err := fileSum(path)
	if err != nil {
		if f.present {
			w.logger.Debug("watched file is gone, waiting for it to reappear", "path", path, "error", err)
		}
		f.present = false
		return false
	}
	f.present = true
	if f.known && sum == f.sum {
		return false
	}
	// Different content, or a file seen for the first time: a file that was
	// missing when it was added has changed by appearing.
	f.sum, f.known = sum, true
	return true
}

// Run watches until ctx is done and returns nil then; it returns an error
// if the underlying notification stops working. Events is closed when Run
// returns, and the Watcher cannot be used again.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running || w.closed {
		w.mu.Unlock()
		return errors.New("watch: Run called twice")
	}
	w.running = true
	w.mu.Unlock()
	defer close(w.events)
	defer w.close()

	// due holds the paths to look at, by the time their burst is over.
	// first holds when a path's burst began: its look is due a debounce
	// after the last event, but never later than maxWait after the first.
	due := map[string]time.Time{}
	first := map[string]time.Time{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	schedule := func(path string) {
		now := time.Now()
		if _, ok := first[path]; !ok {
			first[path] = now
		}
		at := now.Add(w.debounce)
		if limit := first[path].Add(max(maxWait, w.debounce)); at.After(limit) {
			at = limit
		}
		due[path] = at
		// The newest deadline is the latest: other due paths are looked at
		// late rather than early, which only lengthens their quiet period
		// (up to maxWait).
		timer.Reset(at.Sub(now))
	}
	// A path is pending from the moment its change is seen until a reader
	// takes it; it is pending at most once.
	var pending []string
	enqueue := func(path string) {
		if !slices.Contains(pending, path) {
			pending = append(pending, path)
		}
	}
	var rewatch *time.Ticker
	var rewatchC <-chan time.Time
	defer func() {
		if rewatch != nil {
			rewatch.Stop()
		}
	}()

	for {
		var out chan<- string
		var next string
		if len(pending) > 0 {
			out, next = w.events, pending[0]
		}
		select {
		case <-ctx.Done():
			return nil

		case out <- next:
			pending = pending[1:]

		case ev, ok := <-w.fsw.Events:
			if !ok {
				return errors.New("watch: file notifications stopped")
			}
			for _, p := range w.affected(ev) {
				schedule(p)
			}
			if w.lostCount() > 0 && rewatch == nil {
				rewatch = time.NewTicker(rewatchInterval)
				rewatchC = rewatch.C
			}

		case err, ok := <-w.fsw.Errors:
			if !ok {
				return errors.New("watch: file notifications stopped")
			}
			w.logger.Warn("file watch error, looking at every file", "error", err)
			// Events may have been dropped (overflow): look at everything.
			for _, p := range w.paths() {
				schedule(p)
			}

		case <-timer.C:
			now := time.Now()
			var wait time.Duration
			for p, at := range due {
				if d := at.Sub(now); d > 0 {
					if wait == 0 || d < wait {
						wait = d
					}
					continue
				}
				delete(due, p)
				delete(first, p)
				if w.check(p) {
					w.logger.Debug("watched file changed", "path", p)
					enqueue(p)
				}
			}
			if wait > 0 {
				timer.Reset(wait)
			}

		case <-rewatchC:
			for _, p := range w.rewatch() {
				schedule(p)
			}
			if w.lostCount() == 0 {
				rewatch.Stop()
				rewatch, rewatchC = nil, nil
			}
		}
	}
}

// affected returns the watched paths an event may have changed, and notes a
// watched directory that was removed or renamed away.
func (w *Watcher) affected(ev fsnotify.Event) []string {
	name := filepath.Clean(ev.Name)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.files[name]; ok {
		return []string{name}
	}
	// A Kubernetes ConfigMap volume updates by a symlink swap: the watched
	// name is a symlink to ..data/NAME, and the kubelet renames a new
	// ..data symlink over the old one; the watched name itself sees no
	// event. Any event next to a watched symlink may have changed what it
	// points to: look at it (the content comparison decides).
	var links []string
	for p, f := range w.files {
		if f.dir == filepath.Dir(name) && isSymlink(p) {
			links = append(links, p)
		}
	}
	if len(links) > 0 {
		return links
	}
	if w.dirs[name] > 0 && ev.Has(fsnotify.Remove|fsnotify.Rename) {
		// A renamed directory's watch follows the inode to its new name;
		// drop it and watch the name again once something is there.
		_ = w.fsw.Remove(name)
		w.lost[name] = true
		w.logger.Debug("watched directory is gone, waiting for it to reappear", "dir", name)
		return w.pathsIn(name)
	}
	return nil
}

func isSymlink(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&os.ModeSymlink != 0
}

// rewatch watches lost directories again where they exist, and returns the
// files in them, to be looked at.
func (w *Watcher) rewatch() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for dir := range w.lost {
		if err := w.fsw.Add(dir); err != nil {
			continue
		}
		delete(w.lost, dir)
		w.logger.Debug("watching directory again", "dir", dir)
		out = append(out, w.pathsIn(dir)...)
	}
	return out
}

func (w *Watcher) lostCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lost)
}

// check looks at path now and reports whether its content changed.
func (w *Watcher) check(path string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, ok := w.files[path]
	if !ok {
		return false // removed meanwhile
	}
	return w.look(path, f)
}

func (w *Watcher) paths() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.files))
	for p := range w.files {
		out = append(out, p)
	}
	return out
}

// pathsIn lists the watched files in dir. Called with w.mu held.
func (w *Watcher) pathsIn(dir string) []string {
	var out []string
	for p, f := range w.files {
		if f.dir == dir {
			out = append(out, p)
		}
	}
	return out
}

// close releases the notification resources; Run calls it when it returns.
// A Watcher whose Run is never called should be closed with Close.
func (w *Watcher) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return w.fsw.Close()
}

// Close releases a Watcher that will not be Run; after Run it does nothing.
func (w *Watcher) Close() error { return w.close() }

// OnChange watches path until ctx is done or stop is called, calling
// changed each time the file's content changes, with the semantics of a
// Watcher (New documents them). It is for a handler host that swaps to a
// new executable: changed runs on the watcher's own goroutine, one call at
// a time, so a slow swap folds later changes into one more call rather than
// queueing them. The watch is in place when OnChange returns; stop waits
// for the goroutines and for a call of changed in progress, so changed must
// not call stop.
func OnChange(ctx context.Context, path string, logger hclog.Logger, changed func(), opts ...Option) (stop func(), err error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	w, err := New(path, logger, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		if err := w.Run(ctx); err != nil {
			logger.Warn("file watch stopped, changes are no longer seen", "path", path, "error", err)
		}
	}()
	callDone := make(chan struct{})
	go func() {
		defer close(callDone)
		// Events is closed when Run returns, which ends this loop.
		for range w.Events() {
			if ctx.Err() != nil {
				continue // stopping: drain without calling
			}
			changed()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-runDone
			<-callDone
		})
	}, nil
}

// fileSum hashes a file as a stream: a huge file saved over a watched one
// costs reading it, not holding it (issue 11 item 12: a 1 GB save took a
// running up to 1.07 GB).
func fileSum(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		// A device or a fifo is never read: its "content" is endless
		// or consumed by reading it.
		return sum, fmt.Errorf("%s is not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
