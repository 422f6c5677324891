package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
	"sigs.k8s.io/yaml"
)

// printValue writes v as JSON or YAML and reports whether the output
// format was one of those.
func (c *cli) printValue(v any) (bool, error) {
	switch c.g.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return true, err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", b)
		return true, err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = c.stdout.Write(b)
		return true, err
	case "table":
		return false, nil
	}
	return true, usageError{fmt.Errorf("-o %q: want table, json or yaml", c.g.output)}
}

func (c *cli) printTrunk(t rpc.TrunkConfig) error {
	if done, err := c.printValue(t); done {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "trunk_id:\t%s\n", t.TrunkID)
	fmt.Fprintf(w, "display_name:\t%s\n", t.DisplayName)
	fmt.Fprintf(w, "domain:\t%s\n", t.Domain)
	fmt.Fprintf(w, "channel_limit:\t%d\n", t.ChannelLimit)
	fmt.Fprintf(w, "circuit_breaker:\t%s\n", breaker(t))
	fmt.Fprintf(w, "calls_attempted:\t%d\n", t.CallsAttempted)
	fmt.Fprintf(w, "calls_answered:\t%d\n", t.CallsAnswered)
	fmt.Fprintf(w, "asr:\t%.1f%%\n", t.CurrentASR)
	fmt.Fprintf(w, "acd:\t%ds\n", t.CurrentACD)
	fmt.Fprintf(w, "mos:\t%.2f\n", t.CurrentMOS)
	fmt.Fprintf(w, "pdd:\t%.0f ms\n", t.CurrentPDDms)
	fmt.Fprintf(w, "sip:\t%s\n", withError(t.SIPState, t.SIPError))
	fmt.Fprintf(w, "registration:\t%s\n", withError(t.RegistrationState, t.RegistrationError))
	fmt.Fprintf(w, "active_calls:\t%d\n", t.ActiveCalls)
	fmt.Fprintf(w, "transport:\t%s\n", transportText(t))
	fmt.Fprintf(w, "srtp:\tinbound %s, outbound %s\n",
		trunk.MediaEncryption(t.InboundMediaEncryption), trunk.MediaEncryption(t.OutboundMediaEncryption))
	if t.SRTPWithoutTLS {
		fmt.Fprintf(w, "warning:\t%s\n", srtpRisk)
	}
	return w.Flush()
}

// srtpRisk explains SRTPWithoutTLS.
const srtpRisk = "SRTP keys travel in the SDP over unencrypted SIP: whoever sees the signalling can decrypt the media (use transport TLS and a sip_tls_port)"

func transportText(t rpc.TrunkConfig) string {
	s := trunk.Transport(t.Transport).String()
	if t.SIPTLSPort != 0 {
		s += fmt.Sprintf(" (TLS listener on %d)", t.SIPTLSPort)
	}
	return s
}

func (c *cli) printList(list []rpc.TrunkConfig) error {
	if list == nil {
		list = []rpc.TrunkConfig{}
	}
	if done, err := c.printValue(list); done {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TRUNK_ID\tCHANNELS\tDOMAIN\tDISPLAY_NAME\tSIP\tREGISTRATION\tCALLS\tBREAKER\tASR\tACD\tMOS")
	for _, t := range list {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%.1f%%\t%ds\t%.2f\n", t.TrunkID, t.ChannelLimit, dash(t.Domain), dash(t.DisplayName),
			dash(t.SIPState), dash(t.RegistrationState), t.ActiveCalls, breaker(t), t.CurrentASR, t.CurrentACD, t.CurrentMOS)
	}
	return w.Flush()
}

// breaker is the state of a trunk's circuit breaker: closed, open or
// half-open; "-" when the SIP plane has nothing to say.
func breaker(t rpc.TrunkConfig) string {
	switch {
	case t.BreakerState != "":
		return t.BreakerState
	case t.IsCBTripped:
		return "open"
	}
	return "-"
}

func (c *cli) printCalls(list []rpc.CallInfo) error {
	if list == nil {
		list = []rpc.CallInfo{}
	}
	if done, err := c.printValue(list); done {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CALL_ID\tTRUNK\tDIRECTION\tFROM\tTO\tSTATE\tSTART")
	for _, k := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.CallID, k.TrunkID, k.Direction, dash(k.From), dash(k.To), k.State, startTime(k.Start))
	}
	return w.Flush()
}

// startTime shows a call's start (unix milliseconds) in local time.
func startTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format(time.DateTime)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// withError appends an error to a state when there is one.
func withError(state, err string) string {
	if err == "" {
		return dash(state)
	}
	return dash(state) + " (" + err + ")"
}
