package main

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

// jsonGroup is a consumer group in JSON output.
type jsonGroup struct {
	Topic   string            `json:"topic"`
	Group   string            `json:"group"`
	Members uint32            `json:"members"`
	Offsets []jsonGroupOffset `json:"offsets"`
}

type jsonGroupOffset struct {
	Partition int32  `json:"partition"`
	Offset    uint64 `json:"offset"`
}

func toJSONGroup(g client.GroupInfo) jsonGroup {
	out := jsonGroup{Topic: g.Topic, Group: g.Group, Members: g.Members, Offsets: []jsonGroupOffset{}}
	for _, o := range g.Offsets {
		out.Offsets = append(out.Offsets, jsonGroupOffset{o.Partition, o.Offset})
	}
	return out
}

func (a *app) printGroup(g client.GroupInfo) {
	a.printf("%s\t%s\tmembers=%d", g.Topic, g.Group, g.Members)
	for _, o := range g.Offsets {
		a.printf("\tp%d=%d", o.Partition, o.Offset)
	}
	a.printf("\n")
}

func (a *app) groupsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "Inspect and manage consumer groups (identified by topic and group id)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List consumer groups",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				groups, err := c.ListGroups()
				if err != nil {
					return err
				}
				if a.jsonOut {
					out := []jsonGroup{}
					for _, g := range groups {
						out = append(out, toJSONGroup(g))
					}
					return a.printJSON(map[string]any{"groups": out})
				}
				for _, g := range groups {
					a.printGroup(g)
				}
				return nil
			})
		}),
	}

	describe := &cobra.Command{
		Use:   "describe TOPIC GROUP",
		Short: "Show a consumer group's members and committed offsets",
		Args:  cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				g, err := c.DescribeGroup(args[0], args[1])
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(toJSONGroup(g))
				}
				a.printGroup(g)
				return nil
			})
		}),
	}

	var lagPartition int32
	lag := &cobra.Command{
		Use:   "lag TOPIC GROUP",
		Short: "Show how far a group's committed offset is behind the log end",
		Args:  cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				l, err := c.GetLag(args[0], args[1], lagPartition)
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"topic": args[0], "group": args[1],
						"partition": lagPartition, "committed": l.Committed, "latest": l.Latest, "lag": l.Lag})
				}
				a.printf("committed=%d latest=%d lag=%d\n", l.Committed, l.Latest, l.Lag)
				return nil
			})
		}),
	}
	lag.Flags().Int32Var(&lagPartition, "partition", 0, "partition")

	var (
		resetPartition int32
		to             string
	)
	reset := &cobra.Command{
		Use:   "reset TOPIC GROUP --to earliest|latest|OFFSET",
		Short: "Set a group's committed offset",
		Args:  cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			mode, offset := to, uint64(0)
			if to != client.ModeEarliest && to != client.ModeLatest {
				n, err := strconv.ParseUint(to, 10, 64)
				if err != nil {
					return usagef("--to must be earliest, latest or an offset, not %q", to)
				}
				mode, offset = client.ModeOffset, n
			}
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.ResetOffset(args[0], args[1], resetPartition, mode, offset); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"topic": args[0], "group": args[1],
						"partition": resetPartition, "to": to, "reset": true})
				}
				a.printf("reset %s/%s partition %d to %s\n", args[0], args[1], resetPartition, to)
				return nil
			})
		}),
	}
	reset.Flags().Int32Var(&resetPartition, "partition", 0, "partition")
	reset.Flags().StringVar(&to, "to", "", "earliest, latest or an explicit offset")
	_ = reset.MarkFlagRequired("to")

	del := &cobra.Command{
		Use:   "delete TOPIC GROUP",
		Short: "Delete a consumer group and its committed offsets",
		Args:  cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.DeleteGroup(args[0], args[1]); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"topic": args[0], "group": args[1], "deleted": true})
				}
				a.printf("deleted group %s/%s\n", args[0], args[1])
				return nil
			})
		}),
	}
	cmd.AddCommand(list, describe, lag, reset, del)
	return cmd
}
