package broker

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	o := testOptions(t, true)
	o.Registerer = reg
	o.MaxTopicLabels = 2
	b := openBroker(t, o)
	for _, n := range []string{"a", "b", "c", "d"} {
		if err := b.CreateTopic(n, 2); err != nil {
			t.Fatal(err)
		}
		mustProduce(t, b, n, 0, "k", "vvv") // 4 bytes each
	}
	if _, _, err := b.Fetch("a", 0, 0, 10, "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Consume("c", 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit("a", "g1", 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit("a", "g2", 1, 5); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit("b", "g3", 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit("c", "g\xff", 0, 0); err != nil { // not UTF-8: "_other"
		t.Fatal(err)
	}
	want := `
flymq_broker_consumer_lag{group="_other",topic="_other"} 2
flymq_broker_consumer_lag{group="g1",topic="a"} 1
flymq_broker_consumer_lag{group="g2",topic="a"} 0
flymq_broker_fetched_messages_total{topic="_other"} 1
flymq_broker_fetched_messages_total{topic="a"} 1
flymq_broker_fetched_messages_total{topic="b"} 0
flymq_broker_partitions 8
flymq_broker_produced_bytes_total{topic="_other"} 8
flymq_broker_produced_bytes_total{topic="a"} 4
flymq_broker_produced_bytes_total{topic="b"} 4
flymq_broker_topics 4
`
	if got := gather(t, reg, "flymq_broker_consumer_lag", "flymq_broker_fetched_messages_total",
		"flymq_broker_partitions", "flymq_broker_produced_bytes_total", "flymq_broker_topics"); got != want {
		t.Fatalf("got:%s\nwant:%s", got, want)
	}
	// Deleting a labelled topic removes its series and frees the slot.
	if err := b.DeleteTopic("a"); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic("e", 1); err != nil {
		t.Fatal(err)
	}
	mustProduce(t, b, "e", 0, "", "12345")
	want = `
flymq_broker_produced_bytes_total{topic="_other"} 8
flymq_broker_produced_bytes_total{topic="b"} 4
flymq_broker_produced_bytes_total{topic="e"} 5
`
	if got := gather(t, reg, "flymq_broker_produced_bytes_total"); got != want {
		t.Fatalf("got:%s\nwant:%s", got, want)
	}
	if !b.Ready() {
		t.Fatal("not ready after Open")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Ready() {
		t.Fatal("ready after Close")
	}
	// Close unregisters everything: the same registry takes a new broker.
	b2 := openBroker(t, o)
	if got := gather(t, reg, "flymq_broker_topics"); got != "\nflymq_broker_topics 4\n" {
		t.Fatalf("after reopen: %q", got)
	}
	b2.Close()
}

// gather renders the named metrics as sorted `name{labels} value` lines.
func gather(t *testing.T, g prometheus.Gatherer, names ...string) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]bool)
	for _, n := range names {
		want[n] = true
	}
	var lines []string
	for _, mf := range mfs {
		if !want[mf.GetName()] {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			name := mf.GetName()
			if len(ls) > 0 {
				name += "{" + strings.Join(ls, ",") + "}"
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			lines = append(lines, fmt.Sprintf("%s %g", name, v))
		}
	}
	sort.Strings(lines)
	return "\n" + strings.Join(lines, "\n") + "\n"
}
