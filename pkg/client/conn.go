package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// Aliases so that users outside this module can name the protocol types
// this package returns (internal/protocol is not importable for them).
type (
	// Op is a frame opcode.
	Op = protocol.Op
	// Header is a decoded frame header.
	Header = protocol.Header
)

// defaultDialTimeout matches the other FlyMQ clients' connect timeout.
const defaultDialTimeout = 10 * time.Second

// Options configures a connection.
type Options struct {
	// TLS enables TLS from the first byte when non-nil. An empty
	// ServerName is taken from the dialed host.
	TLS *tls.Config
	// Username, when non-empty, makes every new connection send AUTH
	// before anything else.
	Username, Password string
	// DialTimeout bounds connecting, TLS handshake and AUTH; 0 means 10 s.
	DialTimeout time.Duration
	// RequestTimeout bounds each request/response exchange of a Client;
	// 0 means no deadline. A request that times out closes the connection,
	// because a late response would be paired with the next request.
	RequestTimeout time.Duration
}

// Errors returned by this package.
var (
	// ErrClosed is returned by calls on a closed Client or Conn.
	ErrClosed = errors.New("client: closed")
	// ErrAuthFailed is returned when the broker refuses the credentials;
	// the wrapped text is the broker's reason.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrUnexpectedResponse is returned when a reply carries an opcode
	// other than the request's, or a payload that does not decode.
	ErrUnexpectedResponse = errors.New("client: unexpected response")
	// ErrTooLong is returned before sending when a name does not fit its
	// length prefix (str16: 65535 bytes, mode str8: 255 bytes).
	ErrTooLong = errors.New("client: string too long for the wire format")
)

// ServerError is an ERROR (0xFF) reply from the broker. The connection
// stays usable after one.
type ServerError struct {
	Message string
}

// Error renders like the upstream Go client ("server error: <msg>").
func (e *ServerError) Error() string { return "server error: " + e.Message }

// Conn is one raw connection for pipelining: Send queues frames, Recv
// reads replies in order. One goroutine may Send while another Recvs;
// Send and Flush are safe for concurrent use, Recv is not. Conn does not
// pair requests with replies, so it must not be shared with a Client.
type Conn struct {
	nc net.Conn
	fr *protocol.FrameReader

	wmu  sync.Mutex
	bw   *bufio.Writer
	hdr  []byte
	werr error
}

// DialConn connects to addr and authenticates when opts.Username is set.
func DialConn(ctx context.Context, addr string, opts Options) (*Conn, error) {
	timeout := opts.DialTimeout
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var nc net.Conn
	var err error
	if opts.TLS != nil {
		d := tls.Dialer{Config: opts.TLS}
		nc, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := newConn(nc)
	if opts.Username != "" {
		if dl, ok := ctx.Deadline(); ok {
			_ = nc.SetDeadline(dl)
		}
		if err := c.authenticate(opts.Username, opts.Password); err != nil {
			nc.Close()
			return nil, err
		}
		_ = nc.SetDeadline(time.Time{})
	}
	return c, nil
}

func newConn(nc net.Conn) *Conn {
	return &Conn{
		nc:  nc,
		fr:  protocol.NewFrameReader(nc),
		bw:  bufio.NewWriterSize(nc, 32<<10),
		hdr: make([]byte, 0, protocol.HeaderSize),
	}
}

// authenticate sends AUTH and checks the 0x71 reply.
func (c *Conn) authenticate(user, pass string) error {
	if len(user) > protocol.MaxStr16 || len(pass) > protocol.MaxStr16 {
		return fmt.Errorf("auth: %w", ErrTooLong)
	}
	req := protocol.AuthRequest{Username: user, Password: pass}
	h, p, err := c.roundTrip(protocol.OpAuth, req.AppendTo(nil))
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if h.Op != protocol.OpAuthResponse {
		return fmt.Errorf("auth: %w: opcode %v", ErrUnexpectedResponse, h.Op)
	}
	var resp protocol.AuthResponse
	if err := resp.Decode(p); err != nil {
		return fmt.Errorf("auth: %w: %w", ErrUnexpectedResponse, err)
	}
	if !resp.Success {
		return fmt.Errorf("%w: %s", ErrAuthFailed, resp.Error)
	}
	return nil
}

// roundTrip sends one request and reads its reply; ERROR replies become
// *ServerError. The payload is valid until the next Recv.
func (c *Conn) roundTrip(op Op, payload []byte) (Header, []byte, error) {
	if err := c.Send(op, protocol.FlagBinary, payload); err != nil {
		return Header{}, nil, err
	}
	h, p, err := c.Recv()
	if err != nil {
		return h, nil, err
	}
	if h.Op == protocol.OpError {
		return h, p, &ServerError{Message: protocol.DecodeError(p)}
	}
	return h, p, nil
}

// Send queues one request frame. Frames are written when the buffer
// fills, on Flush, or before Recv blocks.
func (c *Conn) Send(op Op, flags uint8, payload []byte) error {
	if len(payload) > protocol.MaxPayload {
		return fmt.Errorf("send %v: %w", op, protocol.ErrFrameTooLarge)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	c.hdr = protocol.AppendHeader(c.hdr[:0], op, flags, len(payload))
	if _, err := c.bw.Write(c.hdr); err != nil {
		c.werr = fmt.Errorf("send %v: %w", op, err)
		return c.werr
	}
	if _, err := c.bw.Write(payload); err != nil {
		c.werr = fmt.Errorf("send %v: %w", op, err)
		return c.werr
	}
	return nil
}

// Flush writes all queued frames.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if err := c.bw.Flush(); err != nil {
		c.werr = fmt.Errorf("flush: %w", err)
	}
	return c.werr
}

// Recv flushes queued frames and reads the next reply frame. The payload
// is valid until the next Recv. ERROR replies are returned as frames
// (h.Op == 0xFF), not as errors, so pipelined callers keep their count.
func (c *Conn) Recv() (Header, []byte, error) {
	if err := c.Flush(); err != nil {
		return Header{}, nil, err
	}
	h, p, err := c.fr.Next()
	if err != nil {
		return h, nil, fmt.Errorf("recv: %w", err)
	}
	return h, p, nil
}

// SetDeadline sets the read and write deadline of the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// RemoteAddr returns the broker address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Close closes the connection; queued frames are discarded.
func (c *Conn) Close() error { return c.nc.Close() }
