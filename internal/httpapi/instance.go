package httpapi

import (
	"net/http"
	"strconv"

	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// instanceHeader names the client instance id: an opaque id a client
// (one SDK instance, one browser tab) makes up once and sends on its stream
// and on every call. The events that a call's result adds to the stream for
// the customer's other tabs (the new_event of a send_event, say) are left
// out of the streams opened with the caller's own id, as an SDK instance
// emits nothing for what it resolves itself (session.Origin). Without it a
// stream gets every event, as before. EventSource, which cannot send
// headers, gives it as the query parameter instanceQuery.
const (
	instanceHeader = "X-Client-Instance"
	instanceQuery  = "clientInstance"
)

// instanceFromHeader returns the X-Client-Instance of h: "" when absent;
// an INVALID_ARGS error when it is given more than once or malformed.
func instanceFromHeader(h http.Header) (string, error) {
	vs := h.Values(instanceHeader)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return checkInstance(vs[0])
	default:
		return "", invalidArgs(instanceHeader + " must be given once")
	}
}

// checkInstance returns id when it is a well-formed instance id: 1 to
// session.MaxInstanceLen printable ASCII characters without spaces (a
// UUID, say); else an INVALID_ARGS error.
func checkInstance(id string) (string, error) {
	if id == "" || len(id) > session.MaxInstanceLen {
		return "", invalidArgs(instanceHeader + " must be 1 to " + strconv.Itoa(session.MaxInstanceLen) + " characters")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return "", invalidArgs(instanceHeader + " must be printable ASCII without spaces")
		}
	}
	return id, nil
}

// withInstance checks the request's X-Client-Instance and returns r with
// its session.Origin in its context (session.WithOrigin); r itself when
// there is none. Malformed → 400 INVALID_ARGS.
func withInstance(r *http.Request) (*http.Request, error) {
	id, err := instanceFromHeader(r.Header)
	if err != nil || id == "" {
		return r, err
	}
	return r.WithContext(session.WithOrigin(r.Context(), session.OriginOf(id))), nil
}

// streamOrigin is the Origin of a stream request's instance: the header,
// else the query parameter.
func streamOrigin(r *http.Request) (session.Origin, error) {
	id, err := instanceFromHeader(r.Header)
	if err != nil {
		return 0, err
	}
	if id == "" {
		if vs, ok := r.URL.Query()[instanceQuery]; ok {
			if len(vs) != 1 {
				return 0, invalidArgs(instanceQuery + " must be given once")
			}
			if id, err = checkInstance(vs[0]); err != nil {
				return 0, err
			}
		}
	}
	return session.OriginOf(id), nil
}
