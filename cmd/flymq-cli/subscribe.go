package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

func (a *app) subscribeCmd() *cobra.Command {
	var (
		group     string
		partition int32
		mode      string
		follow    bool
		max       int32
		interval  time.Duration
		limit     int
	)
	cmd := &cobra.Command{
		Use:   "subscribe TOPIC",
		Short: "Join a consumer group and print the start offset, or follow the partition",
		Long: "Subscribe to a partition. Without --follow, print the position the broker\n" +
			"returns for --mode. With --follow, poll FETCH from that position, print\n" +
			"every message and commit the new position after each non-empty batch\n" +
			"(when --group is set) until interrupted or --limit messages were printed.",
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			switch mode {
			case client.ModeEarliest, client.ModeLatest, client.ModeCommit:
			default:
				return usagef("--mode must be earliest, latest or commit, not %q", mode)
			}
			topic := args[0]
			return a.withClient(cmd, func(c *client.Client) error {
				pos, err := c.Subscribe(topic, group, partition, mode)
				if err != nil {
					return err
				}
				if !follow {
					if a.jsonOut {
						return a.printJSON(map[string]any{"topic": topic, "group": group,
							"partition": partition, "offset": pos})
					}
					a.printf("start offset: %d\n", pos)
					return nil
				}
				err = a.follow(cmd.Context(), c, topic, group, partition, pos, max, interval, limit)
				if errors.Is(err, context.Canceled) {
					return nil // interrupted: a normal way to stop following
				}
				return err
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&group, "group", "", "consumer group id (empty: no group, nothing committed)")
	f.Int32Var(&partition, "partition", 0, "partition")
	f.StringVar(&mode, "mode", client.ModeLatest, "start position: earliest, latest or commit")
	f.BoolVar(&follow, "follow", false, "keep fetching new messages and committing positions")
	f.Int32Var(&max, "max", 100, "maximum messages per fetch while following")
	f.DurationVar(&interval, "poll-interval", 500*time.Millisecond, "wait between empty fetches while following")
	f.IntVar(&limit, "limit", 0, "stop following after this many messages (0: no limit)")
	return cmd
}

// follow polls FETCH from pos, printing messages and committing the next
// position after every non-empty batch.
func (a *app) follow(ctx context.Context, c *client.Client, topic, group string, partition int32,
	pos uint64, max int32, interval time.Duration, limit int) error {
	printed := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := c.Fetch(topic, partition, pos, max, "")
		if err != nil {
			return err
		}
		for _, m := range res.Messages {
			if err := a.printMessage(topic, partition, m.Offset, m.Key, m.Value); err != nil {
				return err
			}
			printed++
			if limit > 0 && printed >= limit {
				// Commit only what was printed, so a restart resumes after it.
				return a.commit(c, topic, group, partition, m.Offset+1)
			}
		}
		if res.NextOffset != pos {
			pos = res.NextOffset
			if err := a.commit(c, topic, group, partition, pos); err != nil {
				return err
			}
		}
		if len(res.Messages) == 0 {
			t := time.NewTimer(interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

func (a *app) commit(c *client.Client, topic, group string, partition int32, pos uint64) error {
	if group == "" {
		return nil
	}
	if err := c.Commit(topic, group, partition, pos); err != nil {
		return fmt.Errorf("commit offset %d: %w", pos, err)
	}
	return nil
}
