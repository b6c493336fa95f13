package zsock

// The C side of a socket's fast path (one cgo call per frame received,
// per batch discarded, per run of repeated sends) is internal/zbatch's
// Frames, the package that also receives and sends whole batches.

import (
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
)

// recvFrame receives one frame into a new slice of its exact size.
func (s *Socket) recvFrame(flags zmq4.Flag) (b []byte, more bool, err error) {
	if !zbatch.Fast {
		return s.recvFramePebbe(flags)
	}
	return s.framesOf().Recv(s.Z, flags)
}

// framesOf returns s's fast-path state, made on first use.
func (s *Socket) framesOf() *zbatch.Frames {
	if s.frames == nil {
		s.frames = zbatch.NewFrames()
	}
	return s.frames
}

// discardBatch bounds the messages one Discard takes, so that a node that
// discards still looks at its control socket often.
const discardBatch = 4096

// Discard receives up to max whole messages without waiting and without
// copying them into Go (at most discardBatch), counting them; it is for a
// node whose handler only counts what it gets. It returns how many came,
// and an error satisfying IsAgain once nothing more waits.
func (s *Socket) Discard(max int) (int, error) {
	max = min(max, discardBatch)
	if max <= 0 {
		return 0, nil
	}
	if !zbatch.Fast || s.Stats.Tapped() {
		// A tap sees each message: they come into Go one by one.
		for n := 0; n < max; n++ {
			if _, err := s.Recv(zmq4.DONTWAIT); err != nil {
				return n, err
			}
		}
		return max, nil
	}
	n, bytes, err := s.framesOf().Discard(s.Z, max)
	s.Stats.msgsIn.Add(uint64(n))
	s.Stats.bytesIn.Add(bytes)
	return n, err
}

// SendRepeat sends the message frames up to n times without waiting, in
// one cgo call, counting what went out. It returns how many did, and an
// error satisfying IsAgain when the peer stopped taking them.
func (s *Socket) SendRepeat(frames [][]byte, n int) (int, error) {
	if len(frames) == 0 || n <= 0 {
		return 0, nil
	}
	size := 0
	for _, f := range frames {
		size += len(f)
	}
	if !zbatch.Fast || len(frames) > 64 || s.Stats.Tapped() {
		for k := 0; k < n; k++ {
			if err := s.Send(frames, zmq4.DONTWAIT); err != nil {
				return k, err
			}
		}
		return n, nil
	}
	sent, err := s.framesOf().SendRepeat(s.Z, frames, n)
	s.Stats.msgsOut.Add(uint64(sent))
	s.Stats.bytesOut.Add(uint64(sent * size))
	if err != nil && !IsAgain(err) {
		s.Stats.sendErrors.Add(1)
	}
	return sent, err
}

func (s *Socket) recvFramePebbe(flags zmq4.Flag) ([]byte, bool, error) {
	b, err := s.Z.RecvBytes(flags)
	if err != nil {
		return nil, false, err
	}
	more, err := s.Z.GetRcvmore()
	return b, more, err
}
