package server

import (
	"time"

	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/protocol"
)

// maxProduceRun caps how many pipelined PRODUCE frames one broker call
// takes, bounding the latency of the first frame in a run.
const maxProduceRun = 256

// runSlot is one PRODUCE frame of a run: either an error to answer as is
// (malformed, refused by the gate, too large) or an index into the items
// handed to the broker.
type runSlot struct {
	req  protocol.ProduceRequest
	err  error
	item int
}

// batchable reports whether h starts or continues a produce run: plain
// PRODUCE frames only (gzip ones take the ordinary path).
func batchable(h protocol.Header) bool {
	return h.Op == protocol.OpProduce && h.Flags&protocol.FlagGzip == 0
}

// produceRun serves a PRODUCE frame together with the PRODUCE frames for
// the same topic already buffered behind it, with one broker call. Replies
// are exactly those of serving them one by one, in order. A buffered frame
// that cannot join the run (another topic) is returned for the caller to
// dispatch next; its payload stays valid because gathering only consumes
// frames that are wholly buffered (FrameReader.Peek).
func (c *conn) produceRun(h protocol.Header, p []byte, out []byte) (rest *pendingFrame, _ []byte) {
	start := time.Now()
	slots := c.runSlots[:0]
	items := c.runItems[:0]
	topic := ""
	for {
		var s runSlot
		c.route, c.op, c.gated = &c.s.routes[protocol.OpProduce], protocol.OpProduce, false
		s.err = s.req.Decode(p)
		if s.err == nil && len(slots) > 0 && s.req.Topic != topic {
			rest = &pendingFrame{h: h, p: p}
			break
		}
		if s.err == nil {
			topic = s.req.Topic
			s.err = c.authorize(s.req.Topic)
		}
		if s.err == nil && len(s.req.Key)+len(s.req.Value) > maxRecordBytes {
			s.err = tooLarge(len(s.req.Key) + len(s.req.Value))
		}
		s.item = -1
		if s.err == nil {
			s.item = len(items)
			items = append(items, broker.ProduceItem{Partition: s.req.Partition, Key: s.req.Key, Value: s.req.Value})
		}
		slots = append(slots, s)
		if len(slots) == maxProduceRun {
			break
		}
		next, complete := c.fr.Peek()
		if !complete || !batchable(next) {
			break
		}
		h, p, _ = c.fr.Next() // wholly buffered: no I/O, cannot fail
	}

	var topicErr error
	if len(items) > 0 {
		topicErr = c.s.opts.Broker.ProduceBatch(topic, items)
	}
	m := c.s.metrics
	elapsed := time.Since(start).Seconds()
	for i := range slots {
		s := &slots[i]
		err := s.err
		if err == nil {
			err = topicErr
		}
		var res broker.ProduceResult
		if err == nil {
			res, err = items[s.item].Result, items[s.item].Err
		}
		m.requests[protocol.OpProduce].Inc()
		m.latency[protocol.OpProduce].Observe(elapsed)
		if err != nil {
			m.errors[protocol.OpProduce].Inc()
			out = protocol.AppendError(out, c.errorText(protocol.OpProduce, partitionText(err, "not found")))
			continue
		}
		out = appendRecordMetadata(out, &s.req, res)
	}
	clear(items) // drop references to the read buffer
	clear(slots)
	c.runSlots, c.runItems = slots[:0], items[:0]
	return rest, out
}

// pendingFrame is a frame read but not yet served.
type pendingFrame struct {
	h protocol.Header
	p []byte
}
