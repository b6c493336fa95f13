package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/inbox"
	"github.com/ztopo/ztopo/internal/zbatch"
)

// Options tune ServeEndpoint. The zero value is ready to use.
type Options struct {
	// Workers is how many requests Handle works on at once; 0 means
	// GOMAXPROCS, at least 4. With 1, requests are handled one at a time in
	// the order they arrive.
	Workers int
	// Linger bounds how long answers still queued when Serve returns may
	// take to reach ztopo; 0 means 1s.
	Linger time.Duration
	// SendTimeout is how long an answer may wait for ztopo to take it
	// before Serve gives up with an error (ztopo then restarts the
	// plugin); 0 means 10s.
	SendTimeout time.Duration
	// ErrorLog receives protocol problems (unknown commands, handler
	// panics); nil logs to stderr, which ztopo puts in the node's log.
	ErrorLog *log.Logger
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = max(4, runtime.GOMAXPROCS(0))
	}
	if o.Linger <= 0 {
		o.Linger = time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	if o.ErrorLog == nil {
		o.ErrorLog = log.New(os.Stderr, "plugin: ", 0)
	}
	return o
}

// ServeEndpoint is Serve with an explicit endpoint and options: it connects
// a DEALER to endpoint, sends READY, answers REQ with h from a pool of
// Options.Workers goroutines, and returns nil after STOP or when ctx is
// done, once the requests it holds are answered.
func ServeEndpoint(ctx context.Context, endpoint string, h Handler, opts Options) error {
	if h == nil {
		return errors.New("plugins: nil handler")
	}
	zctx, err := zmq4.NewContext()
	if err != nil {
		return fmt.Errorf("plugins: zeromq context: %w", err)
	}
	answers, err := inbox.New[answer]()
	if err != nil {
		zctx.Term()
		return fmt.Errorf("plugins: %w", err)
	}
	s := &server{zctx: zctx, endpoint: endpoint, h: h, opts: opts.withDefaults(), answers: answers, io: zbatch.New()}
	err = s.run(ctx)
	// Workers still on a request after a failure find it closed.
	answers.Close()
	// Every socket is closed by now, each with a bounded linger, so Term
	// returns once queued answers are flushed or the linger expires.
	if terr := zctx.Term(); err == nil && terr != nil {
		err = fmt.Errorf("plugins: zeromq context: %w", terr)
	}
	return err
}

var (
	repCmd = []byte(Rep)
	errCmd = []byte(Err)
)

type job struct {
	id     []byte
	frames [][]byte
}

type answer struct {
	id     []byte
	frames [][]byte
	err    error
}

type server struct {
	zctx     *zmq4.Context
	endpoint string
	h        Handler
	opts     Options

	answers     *inbox.Inbox[answer]
	workersDone atomic.Bool

	// Owned by run's goroutine.
	io      *zbatch.IO
	head    [][]byte // [REP or ERR, id] of the answer being sent
	errText [][]byte
}

// run owns the DEALER for its whole life; workers hand answers over
// through s.answers, never through a socket.
func (s *server) run(ctx context.Context) error {
	dealer, err := s.zctx.NewSocket(zmq4.DEALER)
	if err != nil {
		return fmt.Errorf("plugins: dealer: %w", err)
	}
	defer dealer.Close()
	if err := dealer.SetLinger(s.opts.Linger); err != nil {
		return fmt.Errorf("plugins: dealer linger: %w", err)
	}
	// ztopo bounds what it has in flight, so the socket needs no second
	// bound that could only add surprises.
	_ = dealer.SetSndhwm(0)
	_ = dealer.SetRcvhwm(0)
	if err := dealer.SetSndtimeo(s.opts.SendTimeout); err != nil {
		return fmt.Errorf("plugins: dealer send timeout: %w", err)
	}
	if err := dealer.Connect(s.endpoint); err != nil {
		return fmt.Errorf("plugins: connect %s: %w", s.endpoint, err)
	}

	if _, err := dealer.SendMessage(Ready, Protocol); err != nil {
		return fmt.Errorf("plugins: send READY: %w", err)
	}

	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Requests go to the workers in chunks: one channel hand-off (and
	// at most one goroutine wake-up) per chunk rather than per request,
	// while a lone request still gets a worker to itself.
	jobs := make(chan []job, 2*s.opts.Workers)
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range jobs {
				for _, j := range chunk {
					out, err := s.call(hctx, j.frames)
					s.answers.Put(answer{id: j.id, frames: out, err: err})
				}
			}
		}()
	}
	parent := os.Getppid()
	stopAfterCtx := context.AfterFunc(ctx, s.answers.Wake)
	defer stopAfterCtx()

	var (
		backlog  [][]job // chunks the workers had no room for yet
		reqs     []job
		stopping bool
		batch    []answer
	)
	beginStop := func() {
		stopping = true
		// Workers never block, so these sends complete as they finish
		// the requests they are on.
		for _, chunk := range backlog {
			jobs <- chunk
		}
		backlog = nil
		close(jobs)
		go func() {
			wg.Wait()
			s.workersDone.Store(true)
			s.answers.Wake()
		}()
	}
	defer func() {
		if !stopping {
			close(jobs)
		}
	}()

	// onMsg takes one message of a received batch; its frames alias the
	// batch buffer, so what is kept is copied.
	var (
		stopAsked bool
		sendErr   error
	)
	onMsg := func(msg [][]byte) {
		switch {
		case len(msg) >= 2 && string(msg[0]) == Req && (stopping || stopAsked):
			// ztopo sends nothing after STOP; should a host do so, the
			// request is answered rather than left without a word
			// while the plugin finishes what it holds.
			s.answers.Put(answer{id: bytes.Clone(msg[1]), err: errors.New("plugin is stopping")})
		case len(msg) >= 2 && string(msg[0]) == Req && s.opts.Workers == 1:
			// One at a time anyway: handling it right here saves
			// two goroutine hand-offs per message.
			if sendErr != nil {
				return
			}
			kept := zbatch.Clone(msg[1:])
			out, err := s.call(hctx, kept[1:])
			sendErr = s.send(dealer, answer{id: kept[0], frames: out, err: err})
		case len(msg) >= 2 && string(msg[0]) == Req:
			kept := zbatch.Clone(msg[1:])
			reqs = append(reqs, job{id: kept[0], frames: kept[1:]})
		case len(msg) == 1 && string(msg[0]) == Stop:
			stopAsked = !stopping
		default:
			s.opts.ErrorLog.Printf("ignoring unknown message %q (%d frames)", firstFrame(msg), len(msg))
		}
	}

	var poller zbatch.Poller
	dealerID := poller.Add(dealer, zmq4.POLLIN)
	wakeID := poller.AddFd(s.answers.Fd(), zmq4.POLLIN)
	for {
		if !stopping && ctx.Err() != nil {
			beginStop()
		}
		done := s.workersDone.Load()
		batch = s.answers.Take(batch)
		for i := range batch {
			if err := s.send(dealer, batch[i]); err != nil {
				return err
			}
			batch[i] = answer{}
		}
		if stopping && done && len(batch) == 0 {
			return nil
		}
		progress := len(batch) > 0
		for len(backlog) > 0 {
			select {
			case jobs <- backlog[0]:
				backlog[0] = nil
				backlog = backlog[1:]
				progress = true
				continue
			default:
			}
			break
		}
		// A bounded number of batches per turn keeps answers flowing
		// while requests pour in. Reading goes on while stopping, to
		// answer what still comes in.
		for i := 0; i < 4 && len(backlog) == 0 && sendErr == nil; i++ {
			some, err := s.io.Recv(dealer, onMsg)
			progress = progress || some
			if sendErr != nil {
				return sendErr
			}
			s.dispatch(jobs, &backlog, reqs)
			reqs = reqs[:0]
			if stopAsked {
				stopAsked = false
				beginStop()
			}
			if err != nil {
				if zbatch.Transient(err) {
					break
				}
				return fmt.Errorf("plugins: receive: %w", err)
			}
		}
		if progress {
			continue
		}
		events := zmq4.State(0)
		if len(backlog) == 0 {
			events = zmq4.POLLIN
		}
		poller.Update(dealerID, events)
		// Answers and ctx wake the poll through the inbox; the timeout
		// is for noticing an orphaned plugin.
		ready, err := poller.Poll(time.Second)
		if err != nil {
			if zmq4.AsErrno(err) == zmq4.Errno(syscall.EINTR) {
				continue
			}
			return fmt.Errorf("plugins: poll: %w", err)
		}
		if ready == 0 && !stopping && os.Getppid() != parent {
			// ztopo is gone without a STOP (on Linux it kills its
			// plugins; elsewhere this is how they end).
			s.opts.ErrorLog.Printf("parent process gone, stopping")
			beginStop()
			continue
		}
		if poller.Ready(wakeID) != 0 {
			s.answers.Drain()
		}
	}
}

// dispatch splits reqs into one chunk per worker and hands them over; what
// finds the channel full waits in backlog (and the loop stops reading).
func (s *server) dispatch(jobs chan []job, backlog *[][]job, reqs []job) {
	if len(reqs) == 0 {
		return
	}
	size := (len(reqs) + s.opts.Workers - 1) / s.opts.Workers
	for len(reqs) > 0 {
		n := min(size, len(reqs))
		chunk := make([]job, n)
		copy(chunk, reqs[:n])
		reqs = reqs[n:]
		if len(*backlog) == 0 {
			select {
			case jobs <- chunk:
				continue
			default:
			}
		}
		*backlog = append(*backlog, chunk)
	}
}

// call runs the handler, turning a panic into an ERR answer so that one bad
// message does not take the plugin down.
func (s *server) call(ctx context.Context, frames [][]byte) (out [][]byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.opts.ErrorLog.Printf("handler panic: %v", r)
			out, err = nil, fmt.Errorf("handler panic: %v", r)
		}
	}()
	return s.h.Handle(ctx, frames)
}

func (s *server) send(dealer *zmq4.Socket, a answer) error {
	var err error
	if a.err != nil {
		s.head = append(s.head[:0], errCmd, a.id)
		s.errText = append(s.errText[:0], []byte(a.err.Error()))
		err = s.io.Send(dealer, s.head, s.errText, 0)
	} else {
		s.head = append(s.head[:0], repCmd, a.id)
		err = s.io.Send(dealer, s.head, a.frames, 0)
	}
	if err != nil {
		if zmq4.AsErrno(err) == zmq4.Errno(syscall.EAGAIN) {
			return fmt.Errorf("plugins: ztopo took no answer for %v", s.opts.SendTimeout)
		}
		return fmt.Errorf("plugins: send answer: %w", err)
	}
	return nil
}

func firstFrame(msg [][]byte) []byte {
	if len(msg) == 0 {
		return nil
	}
	if len(msg[0]) > 32 {
		return msg[0][:32]
	}
	return msg[0]
}
