package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTopicName(t *testing.T) {
	good := []string{
		"orders", "a/b/c", "a", "__internal", "a.b", "a..b", ".hidden", "x-y_z",
		"caf\u00e9", // NFC é
		"日本語/トピック", "with space", "#/+", strings.Repeat("x", 249),
		strings.Repeat("é", 124) + "x", // 249 bytes
	}
	for _, n := range good {
		if err := ValidateTopicName(n); err != nil {
			t.Errorf("ValidateTopicName(%q) = %v, want nil", n, err)
		}
	}
	bad := []struct{ name, reason string }{
		{"", "empty"},
		{".", `"." segment`},
		{"..", `".." segment`},
		{"a/../b", `".." segment`},
		{"a/./b", `"." segment`},
		{"a//b", "empty '/' segment"},
		{"/a", "empty '/' segment"},
		{"a/", "empty '/' segment"},
		{"/", "empty '/' segment"},
		{`a\b`, "backslash at 1"},
		{"a\x00b", "NUL byte at 1"},
		{"a\nb", "control character U+000A at 1"},
		{"a\x7fb", "control character U+007F at 1"},
		{"a\u0085b", "control character U+0085 at 1"},
		{"a\u200db", "non-printable character U+200D at 1"},
		{"\xff", "not valid UTF-8"},
		{strings.Repeat("x", 250), "250 bytes, at most 249 allowed"},
		{"cafe\u0301", "not in Unicode NFC form"},
	}
	for _, c := range bad {
		err := ValidateTopicName(c.name)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateTopicName(%q) = %v, want ErrInvalidName", c.name, err)
			continue
		}
		if want := "invalid topic name: " + c.reason; err.Error() != want {
			t.Errorf("ValidateTopicName(%q) = %q, want %q", c.name, err, want)
		}
	}
}

func TestReadableDirName(t *testing.T) {
	cases := map[string]string{
		"orders":    "t-orders",
		"a/b":       "t-a%2Fb",
		"Orders":    "t-%4Frders",
		"..":        "t-..",
		"caf\u00e9": "t-caf%C3%A9",
	}
	for in, want := range cases {
		if got := readableDirName(in); got != want {
			t.Errorf("readableDirName(%q) = %q, want %q", in, got, want)
		}
	}
	long1 := strings.Repeat("/", 200) + "a"
	long2 := strings.Repeat("/", 200) + "b"
	d1, d2 := readableDirName(long1), readableDirName(long2)
	if d1 == d2 {
		t.Fatalf("long names collide: %q", d1)
	}
	for _, d := range []string{d1, d2} {
		if len(d) > 2+maxDirEscapedLen+17 || strings.ContainsAny(d, `/\`) {
			t.Errorf("bad dir name %q (%d bytes)", d, len(d))
		}
	}
}

func TestCreateTopicNameRules(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		if err := b.CreateTopic("caf\u00e9", 1); err != nil {
			t.Fatal(err)
		}
		err := b.CreateTopic("cafe\u0301", 1)
		if !errors.Is(err, ErrInvalidName) {
			t.Fatalf("non-NFC twin: %v", err)
		}
		want := "invalid topic name: not in Unicode NFC form; its NFC form is the existing topic \"caf\u00e9\""
		if err.Error() != want {
			t.Fatalf("got %q, want %q", err, want)
		}
		if _, err := b.Produce("a//b", -1, nil, []byte("x")); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("produce auto-create with bad name: %v", err)
		}
		if err := b.CreateTopic("a/b/c", 2); err != nil {
			t.Fatal(err)
		}
		if got := b.Topics(); len(got) != 2 || got[0] != "a/b/c" || got[1] != "caf\u00e9" {
			t.Fatalf("Topics() = %q", got)
		}
	})
}
