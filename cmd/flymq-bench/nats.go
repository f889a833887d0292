package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsOptions configures the embedded NATS JetStream server.
type natsOptions struct {
	Dir        string      // JetStream store directory
	Encryption bool        // cipher: aes with a fresh random key
	SyncAlways bool        // sync_interval: always (ack after fsync)
	TLS        *tls.Config // server side; nil = plain
	User       string      // empty = no auth
	Password   string
}

// startNATS starts nats-server in this process with JetStream file storage
// in o.Dir, and waits until it accepts clients.
func startNATS(o natsOptions) (*server.Server, error) {
	opts := &server.Options{
		ServerName:         "flymq-bench-nats",
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		NoLog:              true,
		NoSigs:             true,
		JetStream:          true,
		StoreDir:           o.Dir,
		JetStreamMaxMemory: 256 << 20,
		MaxPayload:         8 << 20,
	}
	if o.Encryption {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("nats store key: %w", err)
		}
		opts.JetStreamCipher = server.AES
		opts.JetStreamKey = hex.EncodeToString(key)
	}
	if o.SyncAlways {
		opts.SyncAlways = true
		opts.SyncInterval = 2 * time.Minute // the server's default period, as its config parser sets it with "always"
	}
	if o.TLS != nil {
		opts.TLSConfig = o.TLS
		opts.TLS = true
		opts.TLSTimeout = 5
	}
	if o.User != "" {
		opts.Username, opts.Password = o.User, o.Password
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats-server did not become ready within 20s")
	}
	return s, nil
}

// natsClient holds what every NATS connection of a run needs.
type natsClient struct {
	url      string
	tls      *tls.Config
	user     string
	password string
	stream   string
	subject  string // subject prefix; partition p publishes to subject.p
}

func (nc *natsClient) connect() (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("flymq-bench"), nats.MaxReconnects(0)}
	if nc.tls != nil {
		opts = append(opts, nats.Secure(nc.tls))
	}
	if nc.user != "" {
		opts = append(opts, nats.UserInfo(nc.user, nc.password))
	}
	c, err := nats.Connect(nc.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect %s: %w", nc.url, err)
	}
	return c, nil
}

// createStream creates the run's stream: file storage, one replica.
func (nc *natsClient) createStream(ctx context.Context) error {
	c, err := nc.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	js, err := jetstream.New(c)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     nc.stream,
		Subjects: []string{nc.subject + ".>"},
		Storage:  jetstream.FileStorage,
		Replicas: 1,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", nc.stream, err)
	}
	return nil
}

// natsPipe publishes asynchronously on one connection; the driver keeps
// Inflight acks outstanding, and acks of one stream come back in order.
type natsPipe struct {
	conn     *nats.Conn
	js       jetstream.JetStream
	subjects []string
	futures  chan jetstream.PubAckFuture
	done     chan struct{}
	once     sync.Once
	closed   atomic.Bool
}

func (nc *natsClient) newPipe(inflight, partitions int) (*natsPipe, error) {
	c, err := nc.connect()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(c, jetstream.WithPublishAsyncMaxPending(inflight+1))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	subjects := make([]string, partitions)
	for i := range subjects {
		subjects[i] = nc.subject + "." + strconv.Itoa(i)
	}
	return &natsPipe{
		conn: c, js: js, subjects: subjects,
		futures: make(chan jetstream.PubAckFuture, inflight),
		done:    make(chan struct{}),
	}, nil
}

func (p *natsPipe) send(vals [][]byte, partitions []int32) error {
	for i, v := range vals {
		f, err := p.js.PublishAsync(p.subjects[partitions[i]], v)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		select {
		case p.futures <- f:
		case <-p.done:
			return errors.New("connection closed")
		}
	}
	return nil
}

func (p *natsPipe) recv() (Loc, error) {
	var f jetstream.PubAckFuture
	select {
	case f = <-p.futures:
	case <-p.done:
		return 0, errors.New("connection closed")
	}
	select {
	case ack := <-f.Ok():
		if ack.Sequence >= 1<<48 {
			return 0, fmt.Errorf("stream sequence %d out of range", ack.Sequence)
		}
		return MakeLoc(0, ack.Sequence), nil
	case err := <-f.Err():
		return 0, fmt.Errorf("publish ack: %w", err)
	case <-p.done:
		return 0, errors.New("connection closed")
	}
}

func (p *natsPipe) interrupt() { p.close() }

func (p *natsPipe) close() error {
	p.once.Do(func() {
		close(p.done)
		p.conn.Close()
	})
	return nil
}

// Fetch phase limits for NATS.
const (
	natsFetchBytes = 16 << 20
	natsFetchStall = 20 * time.Second
)

// natsFetch reads the whole stream back with an ordered consumer and checks
// every message against the ledger. An ordered consumer delivers the
// stream in sequence order without gaps, so the i-th message is stream
// sequence first+i.
func natsFetch(ctx context.Context, nc *natsClient, ledger *Ledger) (*FetchResult, error) {
	ledger.PrepareVerify()
	lo, hi, count := ledger.Ranges(1)
	total := ledger.Acked()
	if count[0] == 0 {
		return &FetchResult{}, nil
	}
	if uint64(total) != hi[0]-lo[0]+1 {
		return nil, fmt.Errorf("acknowledged sequences %d..%d hold %d messages, %d were acknowledged",
			lo[0], hi[0], hi[0]-lo[0]+1, total)
	}
	c, err := nc.connect()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	js, err := jetstream.New(c)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	start := time.Now()
	cons, err := js.OrderedConsumer(ctx, nc.stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   lo[0],
	})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	var (
		n       atomic.Int64
		failure error
		done    = make(chan struct{})
	)
	// Buffer at most natsFetchBytes in the client: the subscription's
	// default pending limit is 64 MiB, and exceeding it drops messages.
	batch := min(4096, max(1, natsFetchBytes/(ledger.Values.Size()+256)))
	cc, err := cons.Consume(func(m jetstream.Msg) {
		i := n.Load()
		if failure != nil || i >= total {
			return
		}
		if err := ledger.Check(MakeLoc(0, lo[0]+uint64(i)), m.Data()); err != nil {
			failure = err
			close(done)
			return
		}
		n.Store(i + 1)
		if i+1 == total {
			close(done)
		}
	}, jetstream.PullMaxMessages(batch))
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	// A stalled consumer fails the run after natsFetchStall instead of
	// waiting for the whole run's timeout.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := int64(-1), time.Now()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-ctx.Done():
			cc.Stop()
			return nil, fmt.Errorf("fetch: %w after %d of %d messages", context.Cause(ctx), n.Load(), total)
		case now := <-tick.C:
			if cur := n.Load(); cur != last {
				last, lastAt = cur, now
			} else if now.Sub(lastAt) > natsFetchStall {
				cc.Stop()
				return nil, fmt.Errorf("fetch: no message for %s after %d of %d messages", natsFetchStall, cur, total)
			}
		}
	}
	elapsed := time.Since(start)
	cc.Stop()
	<-cc.Closed()
	if failure != nil {
		return nil, failure
	}
	if missing := ledger.Missing(); missing > 0 {
		return nil, fmt.Errorf("%d of %d acknowledged messages were not read back", missing, total)
	}
	return &FetchResult{Messages: total, Elapsed: elapsed}, nil
}

// natsStreamName returns a fresh stream name so that repeated runs against
// one server never mix their messages.
func natsStreamName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "BENCH_" + hex.EncodeToString(b)
}

// mkTemp makes a private temp directory under parent ("" = os.TempDir()).
func mkTemp(parent, pattern string) (string, error) {
	if parent != "" {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return "", fmt.Errorf("temp parent: %w", err)
		}
	}
	dir, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	return filepath.Clean(dir), nil
}
