package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// The shape a JSON request body may have (README, "Limits"). The SDK's
// bodies are a few levels deep (properties are namespace → name → value)
// with a few dozen members; these bounds leave room for any real payload
// and keep a body far from the upstream decoder's own depth limit.
const (
	// maxBodyDepth is how many objects and arrays may be open at once
	// (the body itself is level 1).
	maxBodyDepth = 64
	// maxBodyMembers is how many object members (key: value pairs) the
	// whole body may hold, at every depth together: the work done per
	// request on keys is bounded by the body, not only per object.
	maxBodyMembers = 10000
)

var bodyLimits = jsonobj.Limits{MaxDepth: maxBodyDepth, MaxMembers: maxBodyMembers}

// readBody reads a JSON request body (bounded by limitBody) and checks, in
// one pass, that it is one valid JSON value of valid UTF-8 within
// maxBodyDepth and maxBodyMembers; anything else is INVALID_ARGS. An empty
// body is nil.
func readBody(r *http.Request) (json.RawMessage, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, invalidArgs("could not read the request body")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, nil
	}
	switch err := jsonobj.Check(b, bodyLimits); err {
	case nil:
		return b, nil
	case jsonobj.ErrDepth:
		return nil, invalidArgs("request body is nested too deeply (max " + strconv.Itoa(maxBodyDepth) + " levels of objects and arrays)")
	case jsonobj.ErrMembers:
		return nil, invalidArgs("request body has too many object members (max " + strconv.Itoa(maxBodyMembers) + " in all)")
	case jsonobj.ErrUTF8:
		return nil, invalidArgs("request body is not valid UTF-8")
	default:
		return nil, invalidArgs("request body is not valid JSON")
	}
}

// body is a request body that is a JSON object: as read (raw) and its
// members in order (obj).
type body struct {
	raw json.RawMessage
	obj jsonobj.Object
}

// objectBody reads a body that must be a JSON object; an empty body is {}
// when emptyOK, else an error.
func objectBody(r *http.Request, emptyOK bool) (body, error) {
	raw, err := readBody(r)
	if err != nil {
		return body{}, err
	}
	if raw == nil {
		if emptyOK {
			return body{raw: json.RawMessage("{}"), obj: jsonobj.Object{}}, nil
		}
		return body{}, invalidArgs("request body must be a JSON object")
	}
	if raw[0] != '{' {
		return body{}, invalidArgs("request body must be a JSON object")
	}
	o := jsonobj.ParseValidObject(raw) // checked by readBody; raw is ours
	if o == nil {
		o = jsonobj.Object{}
	}
	return body{raw: raw, obj: o}, nil
}

// get returns the raw value of key; nil when absent.
func (b body) get(key string) json.RawMessage { return b.obj.Raw(key) }

// optString returns the string under key; ok false when absent. Present
// values of another type (null included) are INVALID_ARGS.
func (b body) optString(key string) (s string, ok bool, err error) {
	v := b.get(key)
	if v == nil || string(v) == "null" {
		// null is absent: the SDK only uses a value that is a string
		// (clientDataParsers.parseEvent: typeof customId === 'string').
		return "", false, nil
	}
	if jsonobj.Kind(v) != 's' || json.Unmarshal(v, &s) != nil {
		return "", false, invalidArgs(key + " must be a string")
	}
	return s, true, nil
}

// reqString returns the required string under key.
func (b body) reqString(key string) (string, error) {
	s, ok, err := b.optString(key)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", invalidArgs(key + " is required")
	}
	return s, nil
}

// ---- path and query ----

// pathParam returns the path parameter name, unescaped. What an id may
// be is op.CheckID's to say.
func pathParam(r *http.Request, name string) (string, error) {
	v, err := url.PathUnescape(chi.URLParam(r, name))
	if err != nil {
		return "", invalidArgs(name + " id is not a valid path segment")
	}
	return v, nil
}

// queryInt returns the query parameter name as an integer (def when
// absent): one value, decimal digits with an optional minus sign. Its
// range is the arguments' Validate's to check.
func queryInt(q url.Values, name string, def int) (int, error) {
	vs, ok := q[name]
	if !ok || len(vs) == 0 {
		return def, nil
	}
	if len(vs) > 1 {
		return 0, invalidArgs(name + " is given more than once")
	}
	v := vs[0]
	n, err := strconv.ParseInt(v, 10, 0)
	if err != nil || strings.HasPrefix(v, "+") {
		return 0, invalidArgs(name + " must be an integer ≥ 0")
	}
	return int(n), nil
}
