package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
)

// agentCommands are the subcommands of trunkctl agent.
var agentCommands = map[string]func(ctx context.Context, c *cli, args []string) error{
	"put": cmdAgentPut, "get": cmdAgentGet, "list": cmdAgentList, "rm": cmdAgentRemove,
	"deploy": cmdAgentDeploy, "undeploy": cmdAgentUndeploy,
}

const agentUsage = "put|get|list|rm|deploy|undeploy ..."

// cmdAgent dispatches trunkctl agent SUBCOMMAND.
func cmdAgent(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return usageError{fmt.Errorf("agent needs a subcommand: %s", agentUsage)}
	}
	f, ok := agentCommands[args[0]]
	if !ok {
		return usageError{fmt.Errorf("agent %s: unknown subcommand; want %s", args[0], agentUsage)}
	}
	return f(ctx, c, args[1:])
}

func cmdAgentPut(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("agent put", "AGENT_ID --websocket-url URL [--quic-url URL] [--published]")
	var a trunk.Agent
	fs.StringVar(&a.WebsocketURL, "websocket-url", "", "the agent's WebSocket `URL` (ws:// or wss://)")
	fs.StringVar(&a.QUICURL, "quic-url", "", "the agent's QUIC `URL` (quic://; used when --websocket-url is empty)")
	fs.BoolVar(&a.Published, "published", false, "the agent has a published version (needed to deploy it)")
	rest, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	a.AgentID = rest[0]
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	info, err := cl.PutAgent(ctx, a)
	if err != nil {
		return err
	}
	return c.printAgent(info)
}

// agentID runs one call on an agent named by the command's argument.
func (c *cli) agentID(ctx context.Context, name string, args []string, f func(cl *rpc.Client, id string) error) error {
	fs := c.flags("agent "+name, "AGENT_ID")
	cl, rest, err := c.connect(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer cl.Close()
	return f(cl, rest[0])
}

func cmdAgentGet(ctx context.Context, c *cli, args []string) error {
	return c.agentID(ctx, "get", args, func(cl *rpc.Client, id string) error {
		info, err := cl.GetAgent(ctx, id)
		if err != nil {
			return err
		}
		return c.printAgent(info)
	})
}

func cmdAgentRemove(ctx context.Context, c *cli, args []string) error {
	return c.agentID(ctx, "rm", args, func(cl *rpc.Client, id string) error {
		if err := cl.RemoveAgent(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "agent %s removed\n", id)
		return nil
	})
}

func cmdAgentDeploy(ctx context.Context, c *cli, args []string) error {
	return c.agentID(ctx, "deploy", args, func(cl *rpc.Client, id string) error {
		s, err := cl.DeployAgentAsSip(ctx, id)
		if err != nil {
			return err
		}
		return c.printEndpoint(id, s)
	})
}

func cmdAgentUndeploy(ctx context.Context, c *cli, args []string) error {
	return c.agentID(ctx, "undeploy", args, func(cl *rpc.Client, id string) error {
		s, err := cl.UndeployAgentAsSip(ctx, id)
		if err != nil {
			return err
		}
		return c.printEndpoint(id, s)
	})
}

func cmdAgentList(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("agent list", "")
	cl, _, err := c.connect(ctx, fs, args, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	l, err := cl.ListAgents(ctx)
	if err != nil {
		return err
	}
	if l == nil {
		l = []rpc.AgentInfo{}
	}
	if done, err := c.printValue(l); done {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AGENT_ID\tPUBLISHED\tDEPLOYED\tSIP_URI\tWEBSOCKET_URL")
	for _, a := range l {
		fmt.Fprintf(w, "%s\t%v\t%v\t%s\t%s\n", a.AgentID, a.Published, a.SIPEndpoint.Deployed, a.SIPEndpoint.URI, a.WebsocketURL)
	}
	return w.Flush()
}

func (c *cli) printAgent(a rpc.AgentInfo) error {
	if done, err := c.printValue(a); done {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "agent_id:\t%s\n", a.AgentID)
	fmt.Fprintf(w, "websocket_url:\t%s\n", a.WebsocketURL)
	fmt.Fprintf(w, "quic_url:\t%s\n", a.QUICURL)
	fmt.Fprintf(w, "published:\t%v\n", a.Published)
	fmt.Fprintf(w, "sip_endpoint:\t%s (deployed: %v)\n", a.SIPEndpoint.URI, a.SIPEndpoint.Deployed)
	return w.Flush()
}

func (c *cli) printEndpoint(id string, s rpc.SIPEndpoint) error {
	if done, err := c.printValue(s); done {
		return err
	}
	state := "deployed"
	if !s.Deployed {
		state = "not deployed"
	}
	fmt.Fprintf(c.stdout, "agent %s %s at %s\n", id, state, s.URI)
	return nil
}
