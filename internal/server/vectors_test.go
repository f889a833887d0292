package server

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

type vector struct {
	Name      string         `json:"name"`
	Op        int            `json:"op"`
	Direction string         `json:"direction"`
	Hex       string         `json:"hex"`
	Fields    map[string]any `json:"fields"`
}

func loadVectors(t *testing.T, file string) []vector {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/vectors/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readFrame reads one whole frame, header included.
func readFrame(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	h := make([]byte, protocol.HeaderSize)
	if _, err := io.ReadFull(c, h); err != nil {
		t.Fatalf("read header: %v", err)
	}
	p := make([]byte, binary.BigEndian.Uint32(h[4:]))
	if _, err := io.ReadFull(c, p); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return append(h, p...)
}

// TestCoreVectorsReplay replays every request of core.json, in file order,
// over one connection to a broker started on an empty data dir, and checks
// each reply against the captured one, or the reply the spec requires
// where it corrects the old server.
func TestCoreVectorsReplay(t *testing.T) {
	for _, enc := range []bool{true, false} {
		t.Run(map[bool]string{true: "encrypted", false: "plain"}[enc], func(t *testing.T) {
			h := startServer(t, harnessOptions{encrypted: enc})
			replayCore(t, h)
		})
	}
}

func replayCore(t *testing.T, h *harness) {
	vs := loadVectors(t, "core.json")
	responses := map[string]vector{}
	for _, v := range vs {
		if v.Direction == "response" {
			responses[strings.TrimSuffix(v.Name, ".response")] = v
		}
	}
	c := h.dial(t)
	defer c.Close()
	for _, v := range vs {
		if v.Direction != "request" && !strings.HasPrefix(v.Name, "lifecycle.") {
			continue
		}
		req := mustHex(t, v.Hex)
		if strings.HasPrefix(v.Name, "lifecycle.") {
			assertClosedWithoutReply(t, h, req, v.Name)
			continue
		}
		base := strings.TrimSuffix(v.Name, ".request")
		want, ok := responses[base]
		if !ok {
			t.Fatalf("%s: no response vector", v.Name)
		}
		if _, err := c.Write(req); err != nil {
			t.Fatalf("%s: write: %v", v.Name, err)
		}
		got := readFrame(t, c)
		checkCoreReply(t, base, got, want)
	}
}

func assertClosedWithoutReply(t *testing.T, h *harness, req []byte, name string) {
	t.Helper()
	c := h.dial(t)
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		t.Fatalf("%s: write: %v", name, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 64))
	if n != 0 || err == nil {
		t.Fatalf("%s: got %d bytes, err %v; want the connection closed with no reply", name, n, err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s: connection left open", name)
	}
}

func checkCoreReply(t *testing.T, name string, got []byte, want vector) {
	t.Helper()
	f := want.Fields
	if sf, ok := f["spec_frame_hex"].(string); ok {
		if !bytes.Equal(got, mustHex(t, sf)) {
			t.Errorf("%s:\n got %x\nwant %s (spec frame)", name, got, sf)
		}
		return
	}
	exp := mustHex(t, want.Hex)
	switch {
	case name == "produce.explicit_partition_2":
		var md protocol.RecordMetadata
		if err := md.Decode(got[protocol.HeaderSize:]); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if md.Topic != "pinned" || md.Partition != 2 || md.Offset != 0 || md.KeySize != -1 || md.ValueSize != 1 {
			t.Errorf("%s: got %+v, want partition 2 offset 0", name, md)
		}
		return
	case name == "subscribe.latest_empty_partition":
		exp = append(exp[:protocol.HeaderSize:protocol.HeaderSize], make([]byte, 8)...)
	case name == "get_lag.empty_partition":
		exp = append(exp[:protocol.HeaderSize:protocol.HeaderSize], make([]byte, 32)...)
	case strings.HasPrefix(name, "produce.") && exp[2] == byte(protocol.OpProduce):
		// Mask the broker's wall-clock timestamp.
		tl := int(binary.BigEndian.Uint16(exp[8:]))
		ts := protocol.HeaderSize + 2 + tl + 4 + 8
		copy(exp[ts:ts+8], got[ts:min(ts+8, len(got))])
		if ms := int64(binary.BigEndian.Uint64(got[ts:])); time.Since(time.UnixMilli(ms)).Abs() > time.Minute {
			t.Errorf("%s: timestamp %d is not now", name, ms)
		}
	case name == "list_groups.many":
		checkGroups(t, got)
		return
	case name == "cluster_metadata.all_topics":
		checkAllTopics(t, got, exp)
		return
	}
	if !bytes.Equal(got, exp) {
		t.Errorf("%s:\n got %x\nwant %x", name, got, exp)
	}
}

// checkGroups compares LIST_GROUPS after the whole run. The old server also
// listed orders/g2 and nope/g2, made by SUBSCRIBEs that failed; the spec
// asks that failed SUBSCRIBEs create no group.
func checkGroups(t *testing.T, got []byte) {
	t.Helper()
	var gl protocol.GroupList
	if err := gl.Decode(got[protocol.HeaderSize:]); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range gl.Groups {
		names = append(names, g.Topic+"/"+g.Group)
		if g.Topic == "orders" && g.Group == "g1" {
			if len(g.Offsets) != 1 || g.Offsets[0] != (protocol.PartitionOffset{Partition: 2, Offset: 1}) || g.Members != 1 {
				t.Errorf("orders/g1: got %+v", g)
			}
		}
	}
	want := []string{"empty/g3", "orders/g1"}
	if !slices.Equal(names, want) {
		t.Errorf("groups: got %v, want %v", names, want)
	}
}

func checkAllTopics(t *testing.T, got, exp []byte) {
	t.Helper()
	var g, w protocol.ClusterMetadata
	if err := g.Decode(got[protocol.HeaderSize:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Decode(exp[protocol.HeaderSize:]); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(w.Topics, func(a, b protocol.TopicMetadata) int { return strings.Compare(a.Name, b.Name) })
	gj, _ := json.Marshal(g)
	wj, _ := json.Marshal(w)
	if !bytes.Equal(gj, wj) {
		t.Errorf("cluster_metadata.all_topics:\n got %s\nwant %s", gj, wj)
	}
}
