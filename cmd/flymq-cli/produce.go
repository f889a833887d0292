package main

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

// jsonRecord is a produce result in JSON output.
type jsonRecord struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    uint64 `json:"offset"`
	Timestamp int64  `json:"timestamp_ms"`
}

func (a *app) produceCmd() *cobra.Command {
	var (
		key        string
		partition  int32
		lines      bool
		delay, ttl time.Duration
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC [VALUE]",
		Short: "Produce a message (VALUE, or standard input when absent)",
		Long: "Produce a message. Without VALUE the whole of standard input is one\n" +
			"message, byte for byte; with --lines every input line is a message.",
		Args: cobra.RangeArgs(1, 2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			if lines && len(args) == 2 {
				return usagef("--lines reads standard input; do not also give VALUE")
			}
			if err := checkTimed(cmd, delay, ttl); err != nil {
				return err
			}
			return a.withClient(cmd, func(c *client.Client) error {
				send := func(value []byte) error {
					if delay != 0 || ttl != 0 {
						return a.produceTimed(c, topic, value, delay, ttl)
					}
					md, err := c.ProduceToPartition(topic, partition, []byte(key), value)
					if err != nil {
						return err
					}
					if a.jsonOut {
						return a.printJSON(jsonRecord{md.Topic, md.Partition, md.Offset, md.Timestamp})
					}
					a.printf("produced to %s partition %d offset %d\n", md.Topic, md.Partition, md.Offset)
					return nil
				}
				switch {
				case len(args) == 2:
					return send([]byte(args[1]))
				case lines:
					sc := bufio.NewScanner(a.in)
					sc.Buffer(make([]byte, 64<<10), client.MaxPayload)
					for sc.Scan() {
						if err := cmd.Context().Err(); err != nil {
							return err
						}
						if err := send(sc.Bytes()); err != nil {
							return err
						}
					}
					if err := sc.Err(); err != nil {
						return fmt.Errorf("read standard input: %w", err)
					}
					return nil
				default:
					value, err := io.ReadAll(io.LimitReader(a.in, client.MaxPayload+1))
					if err != nil {
						return fmt.Errorf("read standard input: %w", err)
					}
					if len(value) > client.MaxPayload {
						return fmt.Errorf("standard input exceeds %d bytes", client.MaxPayload)
					}
					return send(value)
				}
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "message key (empty: no key)")
	f.Int32Var(&partition, "partition", -1, "partition (-1: broker chooses by key hash or round-robin)")
	f.BoolVar(&lines, "lines", false, "one message per line of standard input")
	f.DurationVar(&delay, "delay", 0, "deliver after this delay, e.g. 30s (no key or partition)")
	f.DurationVar(&ttl, "ttl", 0, "expire after this time, e.g. 1h (no key or partition)")
	return cmd
}
