package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxTopicNameLen is the longest topic name in bytes (DESIGN.md §3).
const MaxTopicNameLen = 249

// ValidateTopicName checks a topic name against DESIGN.md §3: 1–249 bytes
// of printable UTF-8 in NFC form, no `\`, NUL or control characters, no
// empty `/` segment, and not "." or "..". `/` is a legal hierarchy
// separator. The error wraps ErrInvalidName and names the reason.
func ValidateTopicName(name string) error {
	if reason := nameProblem(name, true); reason != "" {
		return invalidName(reason)
	}
	return nil
}

// ErrInvalidGroupName: a consumer group name breaks the topic-name rules.
// It matches ErrInvalidName too, so callers that render ErrInvalidName
// verbatim ("invalid group name: <reason>") need no extra case.
var ErrInvalidGroupName error = invalidGroupName{}

type invalidGroupName struct{}

func (invalidGroupName) Error() string        { return "invalid group name" }
func (invalidGroupName) Is(target error) bool { return target == ErrInvalidName }

// ValidateGroupName checks a non-empty consumer group id against the
// topic-name rules. Group ids never become paths (they live in the sealed
// offsets log), but a name with control characters, bidi overrides or an
// un-normalised twin of another group confuses operators and audit logs,
// so the same rules apply — except UTF-8 validity: group ids have always
// been opaque bytes (core.md §3), and the metrics fall back to the
// "_other" label for ids that are not UTF-8. Invalid bytes still cannot
// smuggle a control character, NUL or `\` past the checks below. The
// error wraps ErrInvalidGroupName.
func ValidateGroupName(name string) error {
	if reason := nameProblem(name, false); reason != "" {
		return fmt.Errorf("%w: %s", ErrInvalidGroupName, reason)
	}
	return nil
}

// nameProblem returns why name breaks the rules, or "".
func nameProblem(name string, requireUTF8 bool) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxTopicNameLen:
		return fmt.Sprintf("%d bytes, at most %d allowed", len(name), MaxTopicNameLen)
	case requireUTF8 && !utf8.ValidString(name):
		return "not valid UTF-8"
	}
	for i, r := range name {
		switch {
		case r == 0:
			return fmt.Sprintf("NUL byte at %d", i)
		case r == '\\':
			return fmt.Sprintf(`backslash at %d`, i)
		case unicode.IsControl(r):
			return fmt.Sprintf("control character %U at %d", r, i)
		case !unicode.IsPrint(r):
			return fmt.Sprintf("non-printable character %U at %d", r, i)
		}
	}
	if !norm.NFC.IsNormalString(name) {
		return "not in Unicode NFC form"
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch seg {
		case "":
			return "empty '/' segment"
		case ".", "..":
			return fmt.Sprintf("%q segment", seg)
		}
	}
	return ""
}

func invalidName(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidName, reason)
}

// Topic directory names. A name never becomes a path as-is: with
// encryption on the directory is a random id, so a copied data dir reveals
// no topic name; with encryption off it is a readable escaped form for the
// operator. Either way the real name lives in the sealed topic.json and
// the directory name is bounded, ASCII [a-z0-9_.%~-] only, and starts with
// "t-", so it can never be "." or ".." or contain a separator.
const (
	dirPrefix        = "t-"
	maxDirEscapedLen = 120 // + prefix and hash suffix stays far below NAME_MAX (255)
)

// opaqueDirName returns a fresh random directory name.
func opaqueDirName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random topic dir: %w", err)
	}
	return dirPrefix + hex.EncodeToString(b[:]), nil
}

// readableDirName escapes name into a portable file name. Bytes outside
// [a-z0-9_.-] are written %XX (upper-case letters too, so names differing
// only in case stay apart on case-insensitive file systems). Long results
// are cut and get a hash of the whole name, keeping them unique.
func readableDirName(name string) string {
	var sb strings.Builder
	sb.WriteString(dirPrefix)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	s := sb.String()
	if len(s) <= len(dirPrefix)+maxDirEscapedLen {
		return s
	}
	// Cut on a whole escape so the result stays well-formed.
	cut := len(dirPrefix) + maxDirEscapedLen
	for cut > 0 && (s[cut-1] == '%' || cut >= 2 && s[cut-2] == '%') {
		cut--
	}
	sum := sha256.Sum256([]byte(name))
	return s[:cut] + "~" + hex.EncodeToString(sum[:8])
}
