package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the broker thinks you are (after AUTH or a mapped client certificate)",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				id, err := c.WhoAmI()
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"authenticated": id.Authenticated, "username": id.Username,
						"permissions": nonNil(id.Permissions)})
				}
				if !id.Authenticated {
					a.printf("not authenticated\n")
					return nil
				}
				a.printf("%s (permissions: %s)\n", id.Username, strings.Join(id.Permissions, ","))
				return nil
			})
		}),
	}
}

func (a *app) rolesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "roles",
		Short: "List the roles with their permissions",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				roles, err := c.ListRoles()
				if err != nil {
					return err
				}
				if a.jsonOut {
					out := []map[string]any{}
					for _, r := range roles {
						out = append(out, map[string]any{"name": r.Name, "permissions": nonNil(r.Permissions),
							"description": r.Description})
					}
					return a.printJSON(map[string]any{"roles": out})
				}
				for _, r := range roles {
					a.printf("%s\t%s\t%s\n", r.Name, strings.Join(r.Permissions, ","), r.Description)
				}
				return nil
			})
		}),
	}
}
