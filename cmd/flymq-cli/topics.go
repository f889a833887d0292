package main

import (
	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

func (a *app) topicsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create, list and delete topics",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	var partitions int32
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic (an existing topic is left unchanged)",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if partitions < 0 {
				return usagef("invalid partition count: %d", partitions)
			}
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.CreateTopic(args[0], partitions); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"topic": args[0], "partitions": partitions, "created": true})
				}
				a.printf("created topic %s\n", args[0])
				return nil
			})
		}),
	}
	create.Flags().Int32Var(&partitions, "partitions", 1, "number of partitions")

	list := &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				topics, err := c.ListTopics()
				if err != nil {
					return err
				}
				if a.jsonOut {
					if topics == nil {
						topics = []string{}
					}
					return a.printJSON(map[string]any{"topics": topics})
				}
				for _, t := range topics {
					a.printf("%s\n", t)
				}
				return nil
			})
		}),
	}

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a topic and its data",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.DeleteTopic(args[0]); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"topic": args[0], "deleted": true})
				}
				a.printf("deleted topic %s\n", args[0])
				return nil
			})
		}),
	}
	cmd.AddCommand(create, list, del)
	return cmd
}
