package status

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// Authorizer checks a token for a scope; *auth.Authenticator is one.
type Authorizer interface {
	Authenticate(token, scope string) (auth.Principal, error)
}

// OrgHeader names the organization a view is for, as on the REST face;
// the page sends it from its URL's ?org= (a personal token that may act
// for several organizations must name one).
const OrgHeader = "X-Trunkd-Org"

// MaxTrunks bounds the trunks one view shows; the view says when there
// are more.
const MaxTrunks = 2000

//go:embed assets
var assets embed.FS

var (
	page = template.Must(template.ParseFS(assets, "assets/page.html"))
	view = template.Must(template.New("view.html").Funcs(template.FuncMap{
		"pct": pct, "num": num, "secs": secs, "ms": ms, "mos": mos, "since": since,
	}).ParseFS(assets, "assets/view.html"))
)

// Handler serves the status page.
type Handler struct {
	svc  *control.Service
	auth Authorizer
	log  *slog.Logger
	mux  *http.ServeMux
}

// New returns the status page over svc, checking tokens with a.
func New(svc *control.Service, a Authorizer, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{svc: svc, auth: a, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.Handle("GET /status/assets/", http.StripPrefix("/status/", http.FileServerFS(assets)))
	h.mux.HandleFunc("GET /status/view", h.view)
	return h
}

// Routes are the patterns Handler answers; every other path belongs to
// whatever serves beside it (the REST face).
var Routes = []string{"GET /{$}", "GET /status/assets/", "GET /status/view"}

// ServeHTTP serves the page, its assets and its live view.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, nil); err != nil {
		h.log.Error("status page", "err", err)
	}
}

// view renders the live figures for the token's organization.
func (h *Handler) view(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	a, err := h.access(r)
	if err != nil {
		status := http.StatusUnauthorized
		if e, ok := err.(*auth.Error); ok && e.Kind == auth.ErrPermissionDenied {
			status = http.StatusForbidden
		}
		if trunk.ErrorCode(err) == trunk.EINVALID { // several organizations, none named
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return
	}
	v, err := h.collect(r.Context(), a)
	if err != nil {
		h.log.Warn("status view", "err", err)
		http.Error(w, "trunkd cannot read its trunks now; see its log", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := view.Execute(w, v); err != nil {
		h.log.Error("status view", "err", err)
	}
}

// access checks the bearer token for trunks:read and says who it acts for.
func (h *Handler) access(r *http.Request) (control.Access, error) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return control.Access{}, &auth.Error{Kind: auth.ErrUnauthenticated, Message: "no token: enter one with scope trunks:read"}
	}
	p, err := h.auth.Authenticate(tok, auth.ScopeRead)
	if err != nil {
		return control.Access{}, err
	}
	org, err := p.ActFor(r.Header.Get(OrgHeader))
	if err != nil {
		return control.Access{}, err
	}
	return control.Access{Org: org, Operator: p.Admin}, nil
}

// snapshot is what one view shows.
type snapshot struct {
	Now       time.Time
	Org       string // "" for every organization
	Trunks    []row
	More      bool // trunks beyond MaxTrunks not shown
	Calls     []trunk.Call
	InFlight  int
	NoSIP     bool // the server has no SIP plane: no calls
	CallsNote string
}

// row is one trunk: its labels, never its credentials.
type row struct {
	ID, Name, Org string
	Status        trunk.Status
	Limit         uint32
	Spark         template.HTML

	Transport       trunk.Transport // outbound signalling
	TLSPort         uint16          // inbound SIP over TLS listener; 0 for none
	SRTPIn, SRTPOut trunk.MediaEncryption

	AI string // how the trunk reaches an AI agent ("" for none): transport and agent_id, never a token
}

// aiOf says how t reaches an AI agent: the transport of its endpoint and
// its agent_id; "" when it has none. URLs are not shown (they may carry
// credentials in their query).
func aiOf(t *trunk.Trunk) string {
	var via []string
	if t.InboundRule == trunk.RuleHandleAI {
		via = append(via, "HANDLE_AI")
	}
	switch {
	case t.InboundAIWebsocketURL != "" || t.AIWebsocketURL != "":
		via = append(via, "WebSocket")
	case t.InboundAIQUICURL != "" || t.AIQUICURL != "":
		via = append(via, "QUIC")
	}
	if t.AgentID != "" {
		via = append(via, "agent "+t.AgentID)
	}
	return strings.Join(via, " · ")
}

func (h *Handler) collect(ctx context.Context, a control.Access) (snapshot, error) {
	v := snapshot{Now: time.Now(), Org: a.Org}
	after := ""
	for len(v.Trunks) < MaxTrunks {
		list, err := h.svc.ListTrunks(ctx, after, 500, trunk.Filter{}, a)
		if err != nil {
			return v, err
		}
		for _, t := range list {
			v.Trunks = append(v.Trunks, h.row(t))
		}
		if len(list) < 500 {
			break
		}
		after = list[len(list)-1].TrunkID
	}
	if len(v.Trunks) > MaxTrunks {
		v.Trunks, v.More = v.Trunks[:MaxTrunks], true
	}
	calls, err := h.svc.ListCalls(ctx, "", a)
	if trunk.ErrorCode(err) == trunk.EUNAVAILABLE {
		v.NoSIP = true
	} else if err != nil {
		return v, err
	}
	slices.SortFunc(calls, func(x, y trunk.Call) int { return x.Start.Compare(y.Start) })
	v.Calls, v.InFlight = calls, len(calls)
	return v, nil
}

func (h *Handler) row(t *trunk.Trunk) row {
	st := h.svc.TrunkStatus(t.TrunkID)
	limit := st.SIP.ChannelLimit
	if limit == 0 {
		limit = t.ChannelLimit
	}
	return row{ID: t.TrunkID, Name: cmp(t.Name, t.DisplayName), Org: t.Org(), Status: st, Limit: limit,
		Spark:     sparkline(h.svc.QualitySeries(t.TrunkID)),
		Transport: t.Transport, TLSPort: t.SIPTLSPort, SRTPIn: t.InboundMediaEncryption, SRTPOut: t.OutboundMediaEncryption,
		AI: aiOf(t)}
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sparkline draws the quality window bucket by bucket as an inline SVG:
// per bucket a light bar for the calls attempted and a dark one for those
// answered (so the dark share is the ASR), scaled to the busiest bucket;
// a dot marks a bucket's MOS under 3.6.
func sparkline(series []trunk.Quality) template.HTML {
	if len(series) == 0 {
		return ""
	}
	const w, hgt = 3, 20 // 3 px per bucket: a 2 px bar and a gap
	var peak uint64
	for _, q := range series {
		peak = max(peak, q.Attempted)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="calls per stretch of the quality window">`, len(series)*w, hgt, len(series)*w, hgt)
	for i, q := range series {
		if q.Attempted > 0 {
			all := max(1, int(q.Attempted*hgt/peak))
			ok := int(q.Answered * hgt / peak)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#c8d3e0"/>`, i*w, hgt-all, w-1, all)
			if ok > 0 {
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#2f6db5"/>`, i*w, hgt-ok, w-1, ok)
			}
		}
		if q.MOS > 0 && q.MOS < 3.6 {
			fmt.Fprintf(&b, `<rect x="%d" y="0" width="%d" height="2" fill="#c0392b"/>`, i*w, w-1)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers only
}

func pct(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", v)
}

func num(v float64) string { return fmt.Sprintf("%.0f", v) }

func secs(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f s", v)
}

func ms(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f ms", v)
}

func mos(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func since(t time.Time) string {
	return time.Since(t).Round(time.Second).String()
}
