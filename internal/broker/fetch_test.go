package broker

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/storage"
)

func offsetsOf(msgs []storage.Message) string {
	var sb strings.Builder
	for i, m := range msgs {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprint(&sb, m.Offset)
	}
	return sb.String()
}

func TestConsumeErrors(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		if err := b.CreateTopic("t", 2); err != nil {
			t.Fatal(err)
		}
		mustProduce(t, b, "t", 1, "k", "v0")
		mustProduce(t, b, "t", 1, "", "v1")
		m, err := b.Consume("t", 1, 0)
		if err != nil || string(m.Key) != "k" || string(m.Value) != "v0" || m.Offset != 0 {
			t.Fatalf("Consume(1,0) = %+v, %v", m, err)
		}
		if m, err = b.Consume("t", 1, 1); err != nil || len(m.Key) != 0 || string(m.Value) != "v1" {
			t.Fatalf("Consume(1,1) = %+v, %v", m, err)
		}
		if _, err := b.Consume("nope", 0, 0); !errors.Is(err, ErrTopicNotFound) {
			t.Fatalf("missing topic: %v", err)
		}
		for _, p := range []int32{-1, 2, 99} {
			var pe *PartitionError
			if _, err := b.Consume("t", p, 0); !errors.As(err, &pe) || pe.Partition != p {
				t.Fatalf("partition %d: %v", p, err)
			}
		}
		for _, off := range []uint64{2, 3, 1 << 40} {
			if _, err := b.Consume("t", 1, off); !errors.Is(err, ErrNoMessage) {
				t.Fatalf("offset %d: %v", off, err)
			}
		}
		if _, err := b.Consume("t", 0, 0); !errors.Is(err, ErrNoMessage) {
			t.Fatalf("empty partition: %v", err)
		}
		if _, err := b.Consume("never-created", 0, 0); err == nil || len(b.Topics()) != 1 {
			t.Fatal("consume must not auto-create")
		}
	})
}

func TestFetchCoreVector(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		if err := b.CreateTopic("orders", 3); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"m1", "m2", "m3"} {
			mustProduce(t, b, "orders", -1, "", v)
		}
		mustProduce(t, b, "orders", -1, "user-123", "order-1")
		// fetch.partition2: both records; fetch.filter: "USER" matches the key.
		msgs, next, err := b.Fetch("orders", 2, 0, 10, "", 0)
		if err != nil || next != 2 || offsetsOf(msgs) != "0,1" || string(msgs[0].Value) != "m3" ||
			string(msgs[1].Key) != "user-123" || string(msgs[1].Value) != "order-1" {
			t.Fatalf("partition2: %+v next %d %v", msgs, next, err)
		}
		msgs, next, err = b.Fetch("orders", 2, 0, 10, "USER", 0)
		if err != nil || next != 2 || offsetsOf(msgs) != "1" {
			t.Fatalf("filter USER: %s next %d %v", offsetsOf(msgs), next, err)
		}
		// max 0 means 10; beyond the end is empty with next = offset.
		if msgs, next, err = b.Fetch("orders", 2, 0, 0, "", 0); err != nil || len(msgs) != 2 || next != 2 {
			t.Fatalf("max 0: %d %d %v", len(msgs), next, err)
		}
		if msgs, next, err = b.Fetch("orders", 2, 50, 10, "", 0); err != nil || len(msgs) != 0 || next != 50 {
			t.Fatalf("beyond end: %d %d %v", len(msgs), next, err)
		}
		if msgs, next, err = b.Fetch("orders", 2, 2, 10, "", 0); err != nil || len(msgs) != 0 || next != 2 {
			t.Fatalf("at end: %d %d %v", len(msgs), next, err)
		}
		_, _, err = b.Fetch("orders", 3, 0, 10, "", 0)
		if !errors.Is(err, ErrPartitionNotFound) || err.Error() != "partition 3 not found" {
			t.Fatalf("partition 3: %v", err)
		}
		if _, _, err = b.Fetch("orders", -1, 0, 10, "", 0); !errors.Is(err, ErrPartitionNotFound) {
			t.Fatalf("partition -1: %v", err)
		}
		_, _, err = b.Fetch("nope", 0, 0, 10, "", 0)
		if !errors.Is(err, ErrTopicNotFound) || err.Error() != "topic not found: nope" {
			t.Fatalf("missing topic: %v", err)
		}
	})
}

func TestFetchFilters(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		vals := []struct{ key, value string }{
			{"", `{"user":{"id":7},"kind":"order"}`}, // 0
			{"", `{"user":null}`},                    // 1
			{"", ` {"user":{"id":1}}`},               // 2 leading space: not JSON rule
			{"", `[{"user":{"id":1}}]`},              // 3 not an object
			{"", `{"user":{"id":`},                   // 4 invalid JSON
			{"ORDER-9", "plain text"},                // 5
			{"", "order-42"},                         // 6
			{"", "Größe"},                            // 7
			{"", "a[b"},                              // 8
			{"", "\u212a"},                           // 9 KELVIN SIGN lowers to ASCII 'k'
			{"k1", ""},                               // 10
		}
		for _, v := range vals {
			mustProduce(t, b, "f", -1, v.key, v.value)
		}
		cases := []struct{ filter, want string }{
			{"", "0,1,2,3,4,5,6,7,8,9"},
			{"$.user.id", "0"},    // path exists in an object value only
			{"$.user", "0,1"},     // a null value still exists
			{"$.kind", "0"},       //
			{"$.missing", ""},     //
			{"$.user.id.x", ""},   // id is a number, not an object
			{"order", "0,5,6"},    // substring, case-insensitive, key or value
			{"GRÖSSE", ""},        // ToLower does not fold ß
			{"größe", "7"},        //
			{"GRÖ", "7"},          // non-ASCII case-insensitive
			{"^order-\\d+$", "6"}, // regexps are case-sensitive: key ORDER-9 does not match
			{`\d{2}$`, "6"},       // regexp only
			{"a[b", "8"},          // invalid regexp ignored, substring still applies
			{"[", "3,8"},          //
			{"k", "0,9,10"},       // "kind"; Kelvin sign; key k1
			{"$.user|x", ""},      // "$." filters are never regexps
		}
		for _, c := range cases {
			msgs, next, err := b.Fetch("f", 0, 0, 10, c.filter, 0)
			if c.filter == "" {
				if err != nil || offsetsOf(msgs) != c.want || next != 10 {
					t.Fatalf("no filter: %s next %d %v", offsetsOf(msgs), next, err)
				}
				continue
			}
			msgs, next, err = b.Fetch("f", 0, 0, 100, c.filter, 0)
			if err != nil || offsetsOf(msgs) != c.want || next != 11 {
				t.Errorf("filter %q: got [%s] next %d %v, want [%s] next 11",
					c.filter, offsetsOf(msgs), next, err, c.want)
			}
		}
	})
}

func TestFetchScanCapAndMax(t *testing.T) {
	b := openBroker(t, testOptions(t, false))
	for i := range 1500 {
		v := "noise"
		if i == 1200 || i == 1201 {
			v = "needle"
		}
		mustProduce(t, b, "big", -1, "", v)
	}
	msgs, next, err := b.Fetch("big", 0, 0, 10, "needle", 0)
	if err != nil || len(msgs) != 0 || next != 1000 {
		t.Fatalf("scan cap: %d msgs next %d %v", len(msgs), next, err)
	}
	msgs, next, err = b.Fetch("big", 0, next, 1, "needle", 0)
	if err != nil || offsetsOf(msgs) != "1200" || next != 1201 {
		t.Fatalf("second scan: [%s] next %d %v", offsetsOf(msgs), next, err)
	}
	msgs, next, err = b.Fetch("big", 0, 10, 0, "", 0)
	if err != nil || len(msgs) != 10 || msgs[0].Offset != 10 || next != 20 {
		t.Fatalf("default max: %d next %d %v", len(msgs), next, err)
	}
	msgs, next, err = b.Fetch("big", 0, 0, 5000, "", 0)
	if err != nil || len(msgs) != 1000 || next != 1000 {
		t.Fatalf("max above scan cap: %d next %d %v", len(msgs), next, err)
	}
}

func TestFetchSizeCap(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		v := strings.Repeat("v", 100)
		for range 5 {
			mustProduce(t, b, "s", -1, "kk", v)
		}
		per := FetchedMessageOverhead + 2 + 100
		cases := []struct {
			maxBytes  int
			wantCount int
		}{
			{FetchResponseHeaderSize + 2*per, 2},
			{FetchResponseHeaderSize + 2*per - 1, 1},
			{FetchResponseHeaderSize + 3*per + per/2, 3},
			{1, 1}, // the first message always goes
			{0, 5}, // no cap
		}
		for _, c := range cases {
			msgs, next, err := b.Fetch("s", 0, 1, 10, "", c.maxBytes)
			if err != nil || len(msgs) != min(c.wantCount, 4) || next != 1+uint64(min(c.wantCount, 4)) {
				t.Errorf("maxBytes %d: %d msgs next %d %v", c.maxBytes, len(msgs), next, err)
			}
		}
		// With a filter, next points at the first matching record left out
		// (5 was examined and did not match).
		mustProduce(t, b, "s", -1, "", "skip")
		mustProduce(t, b, "s", -1, "kk", v)
		msgs, next, err := b.Fetch("s", 0, 4, 10, "kk", FetchResponseHeaderSize+per)
		if err != nil || offsetsOf(msgs) != "4" || next != 6 {
			t.Fatalf("filtered cap: [%s] next %d %v", offsetsOf(msgs), next, err)
		}
		msgs, next, err = b.Fetch("s", 0, 5, 10, "kk", FetchResponseHeaderSize+per)
		if err != nil || offsetsOf(msgs) != "6" || next != 7 {
			t.Fatalf("filtered cap 2: [%s] next %d %v", offsetsOf(msgs), next, err)
		}
	})
}

func TestExpiredRecordsSkipped(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		past := time.Now().Add(-time.Hour).UnixMilli()
		future := time.Now().Add(time.Hour).UnixMilli()
		for i, exp := range []int64{0, past, future, past, 0} {
			if _, err := b.ProduceWithExpiry("ttl", -1, nil, []byte(fmt.Sprint("v", i)), exp); err != nil {
				t.Fatal(err)
			}
		}
		msgs, next, err := b.Fetch("ttl", 0, 0, 10, "", 0)
		if err != nil || offsetsOf(msgs) != "0,2,4" || next != 5 {
			t.Fatalf("fetch: [%s] next %d %v", offsetsOf(msgs), next, err)
		}
		msgs, next, err = b.Fetch("ttl", 0, 1, 1, "", 0)
		if err != nil || offsetsOf(msgs) != "2" || next != 3 {
			t.Fatalf("fetch from expired: [%s] next %d %v", offsetsOf(msgs), next, err)
		}
		if _, err := b.Consume("ttl", 0, 1); !errors.Is(err, ErrNoMessage) {
			t.Fatalf("consume expired: %v", err)
		}
		if m, err := b.Consume("ttl", 0, 2); err != nil || string(m.Value) != "v2" {
			t.Fatalf("consume unexpired: %v", err)
		}
	})
}

func TestRegexCacheBounded(t *testing.T) {
	c := newRegexCache(4)
	for i := range 10 {
		if c.get(fmt.Sprintf("x%d+", i)) == nil {
			t.Fatal("valid pattern not compiled")
		}
	}
	if c.ll.Len() != 4 || len(c.m) != 4 {
		t.Fatalf("cache holds %d/%d, want 4", c.ll.Len(), len(c.m))
	}
	if c.get("(") != nil || c.get("(") != nil {
		t.Fatal("invalid pattern compiled")
	}
	if _, ok := c.m["x9+"]; !ok {
		t.Fatal("most recent entry evicted")
	}
}
