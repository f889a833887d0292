package protocol

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// Frame reader buffer sizes. The reader starts small and grows only as
// payload bytes actually arrive, so a peer announcing 32 MiB and sending
// nothing costs at most initialBufSize. After a frame larger than
// retainBufSize the buffer is dropped so that one big request does not pin
// 32 MiB per idle connection.
const (
	initialBufSize = 16 << 10
	retainBufSize  = 1 << 20
)

// FrameReader reads frames from a stream. It reads ahead in chunks, so
// several pipelined frames are parsed from one read; Buffered tells how
// many bytes are already waiting. It is not safe for concurrent use.
type FrameReader struct {
	r          io.Reader
	buf        []byte // len(buf) == cap(buf); valid data is buf[start:end]
	start, end int
	limit      int // largest payload accepted; 0 means MaxPayload
}

// SetLimit lowers the largest payload Next accepts (a larger header ends
// the stream with ErrFrameTooLarge, before any payload is read); n <= 0 or
// above MaxPayload restores MaxPayload. A server uses it to keep
// connections that have not authenticated from making it buffer big frames.
func (fr *FrameReader) SetLimit(n int) {
	if n <= 0 || n > MaxPayload {
		n = 0
	}
	fr.limit = n
}

// NewFrameReader returns a FrameReader reading from r. It does its own
// buffering, so r should not be a bufio.Reader.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r}
}

// Next reads the next frame. The payload aliases the reader's buffer and
// is valid only until the next call to Next.
//
// A clean end of stream before a header returns io.EOF; a stream ending
// inside a frame returns io.ErrUnexpectedEOF. Header violations return
// ErrBadMagic, ErrBadVersion or ErrFrameTooLarge before any payload is
// read; all of these end the connection.
func (fr *FrameReader) Next() (Header, []byte, error) {
	if cap(fr.buf) > retainBufSize && fr.end-fr.start <= initialBufSize {
		// Shrink after a large frame, keeping read-ahead bytes.
		nb := make([]byte, initialBufSize)
		fr.end = copy(nb, fr.buf[fr.start:fr.end])
		fr.start, fr.buf = 0, nb
	}
	if err := fr.fill(HeaderSize); err != nil {
		if err == io.ErrUnexpectedEOF && fr.end == fr.start {
			err = io.EOF
		}
		return Header{}, nil, err
	}
	h, err := ParseHeader(fr.buf[fr.start : fr.start+HeaderSize])
	if err != nil {
		return h, nil, err
	}
	if fr.limit > 0 && int(h.Length) > fr.limit {
		return h, nil, ErrFrameTooLarge
	}
	n := HeaderSize + int(h.Length)
	if err := fr.fill(n); err != nil {
		return Header{}, nil, err
	}
	p := fr.buf[fr.start+HeaderSize : fr.start+n : fr.start+n]
	fr.start += n
	if fr.start == fr.end {
		fr.start, fr.end = 0, 0
	}
	return h, p, nil
}

// Buffered returns the number of bytes already read from the stream but
// not yet returned by Next (the start of pipelined frames).
func (fr *FrameReader) Buffered() int { return fr.end - fr.start }

// Peek returns the header of the next frame and whether the whole frame is
// already buffered, without reading. When complete is true the following
// Next does no I/O and leaves every payload it returned before intact, so
// a caller may gather a run of buffered frames and handle them together.
func (fr *FrameReader) Peek() (h Header, complete bool) {
	if fr.end-fr.start < HeaderSize {
		return Header{}, false
	}
	h, err := ParseHeader(fr.buf[fr.start : fr.start+HeaderSize])
	if err != nil || fr.limit > 0 && int(h.Length) > fr.limit {
		return h, false // Next reports the error
	}
	return h, fr.end-fr.start >= HeaderSize+int(h.Length)
}

// fill ensures that at least n bytes are buffered at buf[start:].
func (fr *FrameReader) fill(n int) error {
	for fr.end-fr.start < n {
		if len(fr.buf)-fr.start < n {
			fr.makeRoom(n)
		}
		m, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += m
		if err != nil {
			if fr.end-fr.start >= n {
				return nil // a sticky error (EOF) shows up on the next read
			}
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// makeRoom moves the pending bytes to the front and, if n bytes still do
// not fit, grows the buffer geometrically toward n (never straight to n,
// because n comes from an untrusted header).
func (fr *FrameReader) makeRoom(n int) {
	pending := fr.end - fr.start
	if len(fr.buf) < n && len(fr.buf) == fr.end {
		size := max(initialBufSize, min(2*len(fr.buf), n))
		size = max(size, pending+1) // room for a read to make progress
		nb := make([]byte, size)
		copy(nb, fr.buf[fr.start:fr.end])
		fr.buf, fr.start, fr.end = nb, 0, pending
		return
	}
	if fr.start > 0 {
		copy(fr.buf, fr.buf[fr.start:fr.end])
		fr.start, fr.end = 0, pending
	}
}

// ErrGzipTooLarge is returned by Gunzip when the decompressed payload
// would exceed the caller's limit.
var ErrGzipTooLarge = errors.New("gzip: decompressed payload too large")

// Gunzip decompresses a gzip payload (flag 0x02) into a new buffer of at
// most limit bytes. Decompressor errors are returned unwrapped because
// their text goes on the wire verbatim ("gzip: invalid header", core.md
// §2.1); exceeding limit returns ErrGzipTooLarge.
func Gunzip(p []byte, limit int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(p))
	if err != nil {
		return nil, err
	}
	// A modest first guess: gzip rarely exceeds 4:1 on message payloads,
	// and the buffer grows as data is produced rather than by a header.
	out := make([]byte, 0, min(max(4*len(p), 512), limit+1))
	for {
		if len(out) == cap(out) {
			if len(out) > limit {
				return nil, fmt.Errorf("%w (limit %d bytes)", ErrGzipTooLarge, limit)
			}
			out = append(out, 0)[:len(out)]
		}
		room := out[len(out):min(cap(out), limit+1)]
		m, err := zr.Read(room)
		out = out[:len(out)+m]
		if len(out) > limit {
			return nil, fmt.Errorf("%w (limit %d bytes)", ErrGzipTooLarge, limit)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
