package auth

import (
	"errors"
	"strings"
	"testing"
)

// TestUserNamesValidated: names nobody could type or read back are
// refused with the reason; ordinary ones, e-mail style included, pass.
func TestUserNamesValidated(t *testing.T) {
	for _, name := range []string{"alice", "bob.smith@example.com", "Zoë", "svc-orders_1"} {
		if err := checkUserName(name); err != nil {
			t.Errorf("%q refused: %v", name, err)
		}
	}
	for name, want := range map[string]string{
		"a\\b":                   "invalid user name: backslash at 1",
		"a\x00b":                 "invalid user name: NUL byte at 1",
		"a\x1bb":                 "invalid user name: non-printable character U+001B at 1",
		"\xff":                   "invalid user name: not valid UTF-8",
		strings.Repeat("u", 256): "invalid user name: 256 bytes, at most 255 allowed",
	} {
		err := checkUserName(name)
		if !errors.Is(err, ErrInvalidUserName) || err.Error() != want {
			t.Errorf("%q: got %v, want %q", name, err, want)
		}
	}
}
