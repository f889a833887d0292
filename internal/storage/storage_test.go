package storage

import (
	"bytes"
	"errors"
	"testing"

	"github.com/flymq/flymq/internal/crypto"
)

func TestRoundTrip(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		dir := t.TempDir()
		p := mustOpen(t, opts(dir, r))
		if msgs, err := p.Read(0, 10, 100); err != nil || len(msgs) != 0 {
			t.Fatalf("empty read = %v, %v", msgs, err)
		}
		appendN(t, p, 0, 200)
		big := Record{Key: []byte("big"), Value: bytes.Repeat([]byte("x"), 10000)}
		if off, err := p.Append([]Record{big}); err != nil || off != 200 {
			t.Fatalf("big append = %d, %v", off, err)
		}
		checkAll(t, p, 0, 200)
		msgs, err := p.Read(200, 10, 10)
		if err != nil || len(msgs) != 1 || len(msgs[0].Value) != 10000 {
			t.Fatalf("big read = %d msgs, %v", len(msgs), err)
		}
		if msgs, err := p.Read(5, 3, 1<<20); err != nil || len(msgs) != 3 || msgs[2].Offset != 7 {
			t.Fatalf("maxMessages read = %v, %v", msgs, err)
		}
		if _, err := p.Read(202, 1, 1); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read past end err = %v", err)
		}
		if st := p.Stats(); st.Segments < 3 {
			t.Fatalf("stats %+v: expected rolls", st)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Read(0, 1, 1); !errors.Is(err, ErrClosed) {
			t.Fatalf("read after close err = %v", err)
		}
		if _, err := p.Append([]Record{rec(0)}); !errors.Is(err, ErrClosed) {
			t.Fatalf("append after close err = %v", err)
		}

		p = mustOpen(t, opts(dir, r))
		defer p.Close()
		checkAll(t, p, 0, 200)
		appendN(t, p, 201, 5)
		if r != nil {
			for _, f := range logFiles(t, dir) {
				if b, _ := readFile(f); bytes.Contains(b, []byte("k150")) {
					t.Fatalf("%s holds plaintext", f)
				}
			}
		}
	})
}
