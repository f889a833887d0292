package server

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/protocol"
)

// errTooManyFiles is the accept error that means "out of descriptors".
var errTooManyFiles = syscall.EMFILE

// keepOutBytes is the reply buffer a connection keeps between requests;
// larger ones are shared through outPool.
const keepOutBytes = 16 << 10

var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

// shutdownGrace bounds how long a frame already started may take to
// arrive once shutdown has begun.
const shutdownGrace = 2 * time.Second

// flushThreshold bounds how many reply bytes wait for the end of a burst of
// pipelined requests before they are written anyway.
const flushThreshold = 256 << 10

type groupKey struct{ topic, group string }

// conn is one client connection. Everything but stopping is owned by the
// connection's goroutine.
type conn struct {
	s    *Server
	nc   net.Conn
	ip   string
	peer string
	kind string
	log  *zap.Logger

	fr  *protocol.FrameReader
	out []byte

	// user is the authenticated user name; empty with authed false is an
	// anonymous connection.
	user   string
	authed bool
	// certUser is the user a verified client certificate maps to, kept so a
	// failed AUTH falls back to it rather than to anonymous.
	certUser string

	subs map[groupKey]struct{}

	// Reused between produce runs.
	runSlots []runSlot
	runItems []broker.ProduceItem

	// route and gated track the request being served, so the dispatcher can
	// tell that the handler ran the gate its table row names.
	route *route
	op    protocol.Op
	gated bool

	// deadlineArmed records that a read deadline is set; only the
	// connection's goroutine touches it (stop sets its own, see stop).
	deadlineArmed bool

	stopping atomic.Bool
}

func newConn(s *Server, nc net.Conn, ip, kind string) *conn {
	peer := nc.RemoteAddr().String()
	c := &conn{
		s:    s,
		nc:   nc,
		ip:   ip,
		peer: peer,
		kind: kind,
		log:  s.log.With(zap.String("peer", peer)),
	}
	c.fr = protocol.NewFrameReader(deadlineReader{c})
	return c
}

// stop asks the connection to finish the request in hand and close. A read
// blocked waiting for the next frame is woken at once.
func (c *conn) stop() {
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

// deadlineReader arms the right read deadline before every read: the idle
// timeout while waiting for a new frame, the read timeout once part of a
// frame has arrived (so a header followed by silence is dropped).
type deadlineReader struct{ c *conn }

func (d deadlineReader) Read(p []byte) (int, error) {
	c := d.c
	midFrame := c.fr.Buffered() > 0
	stopping := c.stopping.Load()
	if stopping && !midFrame {
		return 0, io.EOF
	}
	switch {
	case stopping:
		// Shutting down: the rest of a started frame gets a short grace,
		// so a peer trickling a large frame cannot hold the drain open.
		c.nc.SetReadDeadline(time.Now().Add(min(c.s.opts.ReadTimeout, shutdownGrace)))
	case midFrame:
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.ReadTimeout))
	case c.s.opts.IdleTimeout > 0:
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
	default:
		// No idle timeout: clear a deadline only if one was armed, sparing
		// a timer update on every read of a busy connection.
		if c.deadlineArmed {
			c.nc.SetReadDeadline(time.Time{})
			c.deadlineArmed = false
		}
		return c.nc.Read(p)
	}
	c.deadlineArmed = true
	return c.nc.Read(p)
}

func (c *conn) serve() {
	m := c.s.metrics
	m.active[c.kind].Inc()
	defer func() {
		m.active[c.kind].Dec()
		c.nc.Close()
		for k := range c.subs {
			c.s.opts.Broker.Unsubscribe(k.topic, k.group, c.peer)
		}
	}()

	if tc, ok := c.nc.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(c.s.opts.ReadTimeout))
		if err := tc.Handshake(); err != nil {
			// Plaintext on the TLS port, scanners and bad certificates all end
			// here; one debug line is enough.
			m.tlsFailed.Inc()
			c.log.Debug("tls handshake failed", zap.Error(err))
			return
		}
		tc.SetDeadline(time.Time{})
		if c.s.opts.CertUser != nil {
			if u, ok := c.s.opts.CertUser(tc.ConnectionState()); ok {
				c.certUser = u
				c.user, c.authed = u, true
			}
		}
	}

	c.setFrameLimit()
	for {
		h, payload, err := c.fr.Next()
		if err != nil {
			c.flush()
			c.closedBecause(err)
			return
		}
		if c.out == nil {
			c.out = (*outPool.Get().(*[]byte))[:0]
		}
		for {
			// A PRODUCE with more PRODUCEs already buffered behind it is
			// served as a run: one broker call, one write, shared fsync.
			if next, complete := c.fr.Peek(); batchable(h) && complete && batchable(next) {
				var rest *pendingFrame
				if rest, c.out = c.produceRun(h, payload, c.out); rest != nil {
					h, payload = rest.h, rest.p
					continue
				}
				break
			}
			c.serveOne(h, payload)
			break
		}

		// Replies wait while more pipelined requests are already buffered,
		// so a burst is answered with one write.
		if c.fr.Buffered() < protocol.HeaderSize || len(c.out) >= flushThreshold {
			if !c.flush() {
				return
			}
		}
		if c.stopping.Load() && c.fr.Buffered() == 0 {
			c.flush()
			return
		}
	}
}

// preAuthMaxPayload is the largest frame a connection may send before it
// authenticates, when anonymous access is off: enough for AUTH and the
// other small requests, too little for a peer with no credentials to make
// the broker buffer 32 MiB per connection.
const preAuthMaxPayload = 64 << 10

// setFrameLimit applies preAuthMaxPayload to a connection that could do
// nothing with a big frame but be refused.
func (c *conn) setFrameLimit() {
	a := c.s.opts.Auth
	if a.Enabled() && !a.AllowAnonymous() && !c.authed {
		c.fr.SetLimit(preAuthMaxPayload)
		return
	}
	c.fr.SetLimit(0)
}

// serveOne dispatches one request and accounts for it.
func (c *conn) serveOne(h protocol.Header, payload []byte) {
	m := c.s.metrics
	start := time.Now()
	n := len(c.out)
	c.out = c.dispatch(h, payload, c.out)
	m.requests[h.Op].Inc()
	if len(c.out) > n && protocol.Op(c.out[n+2]) == protocol.OpError {
		m.errors[h.Op].Inc()
	}
	m.latency[h.Op].Observe(time.Since(start).Seconds())
}

// flush writes queued replies; false means the connection is gone.
func (c *conn) flush() bool {
	if len(c.out) == 0 {
		return true
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.ReadTimeout))
	_, err := c.nc.Write(c.out)
	if cap(c.out) > keepOutBytes {
		// A big reply's buffer goes back to the shared pool, so an idle
		// connection holds little memory and the next big reply, on any
		// connection, reuses it.
		b := c.out[:0]
		outPool.Put(&b)
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	if err != nil {
		c.log.Debug("write failed, closing", zap.Error(err))
		return false
	}
	return true
}

func (c *conn) closedBecause(err error) {
	reason := "eof"
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, protocol.ErrBadMagic):
		reason = "bad_magic"
	case errors.Is(err, protocol.ErrBadVersion):
		reason = "bad_version"
	case errors.Is(err, protocol.ErrFrameTooLarge):
		reason = "frame_too_large"
	case errors.Is(err, os.ErrDeadlineExceeded):
		reason = "timeout"
		if c.stopping.Load() {
			reason = "shutdown"
		}
	default:
		reason = "io_error"
	}
	c.s.metrics.closed.WithLabelValues(reason).Inc()
	if reason != "eof" && reason != "shutdown" {
		c.log.Debug("connection closed", zap.String("reason", reason), zap.Error(err))
	}
}

// beginFrame reserves a header; endFrame fills it in once the payload is
// appended, so replies are encoded straight into the output buffer.
func beginFrame(out []byte) ([]byte, int) {
	start := len(out)
	return append(out, 0, 0, 0, 0, 0, 0, 0, 0), start
}

// appendReply appends a whole reply frame carrying m. The hot paths
// (produce, fetch) encode in place with beginFrame/endFrame instead, to
// keep m off the heap.
func appendReply(out []byte, op protocol.Op, m interface{ AppendTo([]byte) []byte }) []byte {
	out, start := beginFrame(out)
	return endFrame(m.AppendTo(out), start, op)
}

func endFrame(out []byte, start int, op protocol.Op) []byte {
	h := out[start : start+protocol.HeaderSize]
	h[0] = protocol.Magic
	h[1] = protocol.Version
	h[2] = byte(op)
	h[3] = protocol.FlagBinary
	binary.BigEndian.PutUint32(h[4:], uint32(len(out)-start-protocol.HeaderSize))
	return out
}
