package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

func (a *app) consumeCmd() *cobra.Command {
	var (
		partition int32
		offset    uint64
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Read the single message at an offset",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				key, value, err := c.Consume(args[0], partition, offset)
				var se *client.ServerError
				if errors.As(err, &se) && se.Message == "EOF" {
					// The wire says EOF; say what it means.
					return fmt.Errorf("no message at offset %d of %s partition %d (past the end, or removed by retention): %w",
						offset, args[0], partition, err)
				}
				if err != nil {
					return err
				}
				return a.printMessage(args[0], partition, offset, key, value)
			})
		}),
	}
	cmd.Flags().Int32Var(&partition, "partition", 0, "partition")
	cmd.Flags().Uint64Var(&offset, "offset", 0, "offset")
	return cmd
}

// jsonFetch is a FETCH result in JSON output.
type jsonFetch struct {
	NextOffset uint64        `json:"next_offset"`
	Messages   []jsonMessage `json:"messages"`
}

func (a *app) fetchCmd() *cobra.Command {
	var (
		partition int32
		offset    uint64
		max       int32
		filter    string
	)
	cmd := &cobra.Command{
		Use:   "fetch TOPIC",
		Short: "Read a batch of messages from an offset",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			return a.withClient(cmd, func(c *client.Client) error {
				res, err := c.Fetch(topic, partition, offset, max, filter)
				if err != nil {
					return err
				}
				if a.jsonOut {
					out := jsonFetch{NextOffset: res.NextOffset, Messages: []jsonMessage{}}
					for _, m := range res.Messages {
						out.Messages = append(out.Messages, newJSONMessage(topic, partition, m.Offset, m.Key, m.Value))
					}
					return a.printJSON(out)
				}
				for _, m := range res.Messages {
					if err := a.printMessage(topic, partition, m.Offset, m.Key, m.Value); err != nil {
						return err
					}
				}
				a.printf("next offset: %d\n", res.NextOffset)
				return nil
			})
		}),
	}
	f := cmd.Flags()
	f.Int32Var(&partition, "partition", 0, "partition")
	f.Uint64Var(&offset, "offset", 0, "first offset to read")
	f.Int32Var(&max, "max", 10, "maximum number of messages")
	f.StringVar(&filter, "filter", "", "only messages whose key or value matches (substring, regexp or $.json.path)")
	return cmd
}
