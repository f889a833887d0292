package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

// jsonACL is a topic's access list in JSON output.
type jsonACL struct {
	Topic         string   `json:"topic"`
	Exists        bool     `json:"exists"`
	Public        bool     `json:"public"`
	DefaultPublic *bool    `json:"default_public,omitempty"`
	AllowedUsers  []string `json:"allowed_users"`
	AllowedRoles  []string `json:"allowed_roles"`
}

func (a *app) aclCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Manage topic access lists (admin only)",
		Long: "Topic access lists add access: listed users and roles may read and write the topic.\n" +
			"Role permissions (producer writes, consumer reads) apply to every non-public topic regardless.",
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}

	var (
		public       bool
		users, roles []string
	)
	set := &cobra.Command{
		Use:   "set TOPIC [--public] [--users u1,u2] [--roles r1,r2]",
		Short: "Replace a topic's access list",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.SetACL(args[0], public, users, roles); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(jsonACL{Topic: args[0], Exists: true, Public: public,
						AllowedUsers: nonNil(users), AllowedRoles: nonNil(roles)})
				}
				a.printf("set the access list of %s\n", args[0])
				return nil
			})
		}),
	}
	set.Flags().BoolVar(&public, "public", false, "open the topic to every authenticated user (needs auth.allow_anonymous)")
	set.Flags().StringSliceVar(&users, "users", nil, "users allowed to read and write")
	set.Flags().StringSliceVar(&roles, "roles", nil, "roles allowed to read and write")

	get := &cobra.Command{
		Use:   "get TOPIC",
		Short: "Show a topic's access list",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				acl, err := c.GetACL(args[0])
				if err != nil {
					return err
				}
				if a.jsonOut {
					dp := acl.DefaultPublic
					return a.printJSON(jsonACL{Topic: acl.Topic, Exists: acl.Exists, Public: acl.Public,
						DefaultPublic: &dp, AllowedUsers: nonNil(acl.AllowedUsers), AllowedRoles: nonNil(acl.AllowedRoles)})
				}
				if !acl.Exists {
					a.printf("%s: no access list (default public: %t)\n", acl.Topic, acl.DefaultPublic)
					return nil
				}
				a.printACL(acl.Topic, acl.Public, acl.AllowedUsers, acl.AllowedRoles)
				return nil
			})
		}),
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List every access list",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				l, err := c.ListACLs()
				if err != nil {
					return err
				}
				if a.jsonOut {
					out := []jsonACL{}
					for _, e := range l.Entries {
						out = append(out, jsonACL{Topic: e.Topic, Exists: true, Public: e.Public,
							AllowedUsers: nonNil(e.AllowedUsers), AllowedRoles: nonNil(e.AllowedRoles)})
					}
					return a.printJSON(map[string]any{"acls": out, "default_public": l.DefaultPublic})
				}
				for _, e := range l.Entries {
					a.printACL(e.Topic, e.Public, e.AllowedUsers, e.AllowedRoles)
				}
				a.printf("default public: %t\n", l.DefaultPublic)
				return nil
			})
		}),
	}

	del := &cobra.Command{
		Use:   "delete TOPIC",
		Short: "Remove a topic's access list",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.DeleteACL(args[0]); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"topic": args[0], "deleted": true})
				}
				a.printf("deleted the access list of %s\n", args[0])
				return nil
			})
		}),
	}
	cmd.AddCommand(set, get, list, del)
	return cmd
}

func (a *app) printACL(topic string, public bool, users, roles []string) {
	a.printf("%s\tpublic=%t\tusers=%s\troles=%s\n", topic, public, strings.Join(users, ","), strings.Join(roles, ","))
}
