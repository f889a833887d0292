package server

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/protocol"
	"github.com/flymq/flymq/internal/storage"
)

// route is one row of the gate table: the permission an op needs and the
// handler that serves it. An opcode without a row is answered
// "unknown opcode: N", so nothing reaches the broker ungated.
type route struct {
	gate auth.Gate
	// gateFirst checks the gate before decoding, as the user-management and
	// audit ops do (a non-admin's malformed request gets the auth error).
	gateFirst bool
	// serve decodes the payload, calls c.authorize with the topic the gate
	// is about, and appends the reply frame to out.
	serve func(c *conn, op protocol.Op, p []byte, out []byte) ([]byte, error)
}

// wireError is an error whose text goes to the client verbatim.
type wireError string

func (e wireError) Error() string { return string(e) }

func errorf(format string, args ...any) error { return wireError(fmt.Sprintf(format, args...)) }

// errUngated reports a handler that returned without running its gate: a
// programming error, refused rather than served.
var errUngated = errors.New("internal error: request was not authorized")

func (c *conn) dispatch(h protocol.Header, p []byte, out []byte) []byte {
	r := &c.s.routes[h.Op]
	if r.serve == nil {
		return protocol.AppendError(out, "unknown opcode: "+strconv.Itoa(int(h.Op)))
	}
	if h.Flags&protocol.FlagGzip != 0 {
		var err error
		if p, err = protocol.Gunzip(p, protocol.MaxPayload); err != nil {
			return protocol.AppendError(out, err.Error())
		}
	}
	c.route, c.op, c.gated = r, h.Op, false
	mark := len(out)
	var err error
	if r.gateFirst {
		if err = c.authorize(""); err != nil {
			err = gateFirstText(h.Op, err)
		}
	}
	if err == nil {
		out, err = r.serve(c, h.Op, p, out)
	}
	if err == nil && !c.gated {
		c.log.Error("handler skipped its gate", zap.Stringer("op", h.Op))
		err = errUngated
	}
	if err != nil {
		return protocol.AppendError(out[:mark], c.errorText(h.Op, err))
	}
	return out
}

// authorize runs the current route's gate for topic. Every handler calls
// it exactly once after decoding and before touching the broker.
func (c *conn) authorize(topic string) error {
	c.gated = true
	err := c.s.check(c.identity(), c.route.gate, topic)
	if err != nil {
		c.s.metrics.denied[c.op].Inc()
		c.auditDenied(topic, err)
	}
	return err
}

// errorText turns a handler error into the ERROR frame's text. Texts the
// spec fixes come through as wireError or sentinels with the exact words;
// anything else is a fault of ours, logged and reported without detail
// beyond its own message.
func (c *conn) errorText(op protocol.Op, err error) string {
	var we wireError
	switch {
	case errors.As(err, &we):
		return string(we)
	case errors.Is(err, protocol.ErrBufferTooSmall), errors.Is(err, protocol.ErrInvalidFormat):
		return err.Error()
	case isAuthError(err):
		return err.Error()
	case errors.Is(err, broker.ErrInvalidName), errors.Is(err, broker.ErrInvalidPartitionCount):
		return err.Error()
	case errors.Is(err, storage.ErrRecordTooLarge):
		return err.Error()
	case errors.Is(err, storage.ErrFenced), errors.Is(err, broker.ErrFenced):
		return "partition unavailable: storage failed, broker restart required"
	case errors.Is(err, syscall.ENOSPC):
		// Storage logged the failed write and cut the segment back; the
		// client only needs to know nothing was stored (a produce or a
		// commit alike) and that a retry can succeed once space returns.
		return "storage full: no space left on device, nothing was stored"
	}
	c.log.Error("request failed", zap.Stringer("op", op), zap.Error(err))
	return "internal error: " + err.Error()
}
