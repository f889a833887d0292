package broker

import (
	"container/list"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// regexCacheSize bounds the compiled-filter cache; consumers poll with the
// same few filters, so a small LRU saves recompiling on every FETCH.
const (
	regexCacheSize     = 128
	maxCachedRegexpLen = 4096
)

// matcher is a FETCH filter prepared once per request (core.md §6.7).
type matcher struct {
	lower      string         // strings.ToLower(filter)
	lowerASCII bool           // lower is pure ASCII: allocation-free fast path
	jsonPath   []string       // set for "$." filters
	re         *regexp.Regexp // nil: "$." filter or invalid pattern
}

func (b *Broker) newMatcher(filter string) *matcher {
	m := &matcher{lower: strings.ToLower(filter)}
	m.lowerASCII = isASCII(m.lower)
	if strings.HasPrefix(filter, "$.") {
		m.jsonPath = strings.Split(filter[2:], ".")
	} else {
		m.re = b.regexps.get(filter)
	}
	return m
}

// matches reports whether any rule of §6.7 matches: a JSON path that
// exists, a case-insensitive substring of value or key, or the regexp.
func (m *matcher) matches(key, value []byte) bool {
	if m.containsFold(value) || m.containsFold(key) {
		return true
	}
	if m.jsonPath != nil && len(value) > 0 && value[0] == '{' && jsonPathExists(value, m.jsonPath) {
		return true
	}
	return m.re != nil && (m.re.Match(value) || m.re.Match(key))
}

// containsFold is strings.Contains(strings.ToLower(hay), lower) without
// allocating when both sides are ASCII. Non-ASCII input takes the exact
// slow path, since Unicode lowering can map non-ASCII runes to ASCII
// (U+212A KELVIN SIGN → 'k').
func (m *matcher) containsFold(hay []byte) bool {
	if isASCIIBytes(hay) {
		if !m.lowerASCII {
			return false
		}
		return indexASCIIFold(hay, m.lower) >= 0
	}
	return strings.Contains(strings.ToLower(string(hay)), m.lower)
}

// indexASCIIFold finds lower (already lower-case ASCII) in hay ignoring
// ASCII case.
func indexASCIIFold(hay []byte, lower string) int {
	n := len(lower)
	if n == 0 {
		return 0
	}
	for i := 0; i+n <= len(hay); i++ {
		j := 0
		for ; j < n; j++ {
			c := hay[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == n {
			return i
		}
	}
	return -1
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isASCIIBytes(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// jsonPathExists reports whether value parses as JSON and the dotted path
// of object keys exists in it.
func jsonPathExists(value []byte, path []string) bool {
	var v any
	if err := json.Unmarshal(value, &v); err != nil {
		return false
	}
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = obj[k]; !ok {
			return false
		}
	}
	return true
}

// regexCache is a small LRU of compiled filters; invalid patterns are
// cached as nil so they are not recompiled on every poll either.
type regexCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List // front = most recent; values are *regexEntry
	m   map[string]*list.Element
}

type regexEntry struct {
	pattern string
	re      *regexp.Regexp
}

func newRegexCache(max int) *regexCache {
	return &regexCache{max: max, ll: list.New(), m: make(map[string]*list.Element)}
}

// get returns the compiled pattern, or nil when it does not compile.
func (c *regexCache) get(pattern string) *regexp.Regexp {
	if len(pattern) > maxCachedRegexpLen {
		re, _ := regexp.Compile(pattern)
		return re
	}
	c.mu.Lock()
	if e, ok := c.m[pattern]; ok {
		c.ll.MoveToFront(e)
		re := e.Value.(*regexEntry).re
		c.mu.Unlock()
		return re
	}
	c.mu.Unlock()
	// Compile outside the lock: a slow pattern must not stall other fetches.
	re, err := regexp.Compile(pattern)
	if err != nil {
		re = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[pattern]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*regexEntry).re
	}
	c.m[pattern] = c.ll.PushFront(&regexEntry{pattern: pattern, re: re})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*regexEntry).pattern)
	}
	return re
}
