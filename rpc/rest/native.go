package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/trunk"
)

// Record is the native document of a trunk (/v1/trunks): the flat record
// under the field names AddTrunk takes (never a secret's value), its
// bookkeeping, and its live figures under status. PUT takes it back as it
// is: the read-only keys are ignored, revision is the condition when no
// If-Match is given.
type Record struct {
	Revision  uint64 `json:"revision,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
	*api.TrunkRecord
	Status *api.TrunkConfig `json:"status,omitempty"`
}

// recordBody is a Record as a request body.
type recordBody struct {
	Revision          uint64          `json:"revision"`
	CreatedAt         string          `json:"created_at"`
	UpdatedAt         string          `json:"updated_at"`
	SIPPasswordSet    bool            `json:"sip_password_set"`
	APIBearerTokenSet bool            `json:"api_bearer_token_set"`
	Status            json.RawMessage `json:"status"`
	trunk.Trunk
}

func newRecord(g api.GetTrunkResponse) Record {
	return Record{Revision: g.Revision, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt, TrunkRecord: g.Record, Status: &g.Config}
}

// nativeFound answers GET /v1/trunks/{id}: the Record, its revision as
// the ETag.
func nativeFound(w http.ResponseWriter, req, resp any) error {
	g, err := found(req, resp)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatUint(g.Revision, 10)))
	return writeJSON(w, http.StatusOK, newRecord(g))
}

// nativeRequest decodes a Record body into AddTrunk's or UpdateTrunk's
// request, with keep_secrets from the query and the revision from
// If-Match (else, for an update, from the body).
func (s *Server) nativeRequest(w http.ResponseWriter, r *http.Request, c caller, update bool) (*api.TrunkRequest, error) {
	req := api.NewTrunkRequest()
	req.AdminToken, req.Org = c.token, c.org
	q := r.URL.Query()
	for k := range q {
		if k != "keep_secrets" {
			return nil, trunk.FieldErrorf(k, "unknown query parameter (known: keep_secrets)")
		}
	}
	if v := q.Get("keep_secrets"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, trunk.FieldErrorf("keep_secrets", "%q is not true or false", v)
		}
		req.KeepSecrets = b
	}
	body := recordBody{Trunk: req.Trunk}
	if err := s.decodeBody(w, r, &body); err != nil {
		return nil, err
	}
	req.Trunk = body.Trunk
	rev, err := ifMatch(r)
	if err != nil {
		return nil, err
	}
	if rev == 0 && update {
		rev = body.Revision
	}
	req.IfRevision = rev
	if update {
		id := r.PathValue("id")
		if req.TrunkID == "" {
			req.TrunkID = id
		}
		if req.TrunkID != id {
			return nil, trunk.FieldErrorf("trunk_id", "%q does not match the path's %q", req.TrunkID, id)
		}
	}
	return req, nil
}

// addNative is POST /v1/trunks: 201 with the stored Record.
func (s *Server) addNative(w http.ResponseWriter, r *http.Request, c caller) error {
	req, err := s.nativeRequest(w, r, c, false)
	if err != nil {
		return err
	}
	if _, err := s.call(r.Context(), method("AddTrunk"), req); err != nil {
		return err
	}
	g, err := s.get(r.Context(), c, req.TrunkID)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/trunks/"+req.TrunkID)
	w.Header().Set("ETag", strconv.Quote(strconv.FormatUint(g.Revision, 10)))
	return writeJSON(w, http.StatusCreated, newRecord(g))
}

// updateNative is PUT /v1/trunks/{id}: 204, the new revision as the ETag.
func (s *Server) updateNative(w http.ResponseWriter, r *http.Request, c caller) error {
	req, err := s.nativeRequest(w, r, c, true)
	if err != nil {
		return err
	}
	if _, err := s.call(r.Context(), method("UpdateTrunk"), req); err != nil {
		return err
	}
	if g, err := s.get(r.Context(), c, req.TrunkID); err == nil {
		w.Header().Set("ETag", strconv.Quote(strconv.FormatUint(g.Revision, 10)))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// get runs GetTrunk for c; an unknown id is ENOTFOUND.
func (s *Server) get(ctx context.Context, c caller, id string) (api.GetTrunkResponse, error) {
	req := &api.TrunkIDRequest{AdminToken: c.token, Org: c.org, TrunkID: id}
	resp, err := s.call(ctx, method("GetTrunk"), req)
	if err != nil {
		return api.GetTrunkResponse{}, err
	}
	return found(req, resp)
}

// method returns the api method name, which exists.
func method(name string) api.Method {
	m, ok := api.Lookup(name)
	if !ok {
		panic("rest: no api method " + name)
	}
	return m
}
