package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
)

// Fuzz tests of the request decoders: everything a client controls goes
// through one of these before anything is sent upstream. Each checks that
// the decoder never panics, that what it accepts is well-formed (so it is
// safe to forward), and that what it refuses is refused with the
// contract's error (an *apiError or *http.MaxBytesError, never anything
// that would become a 500). The seed corpora are in testdata/fuzz/<Name>
// and are replayed by every `go test` run.

// refusal checks that err is one the contract maps to a 4xx.
func refusal(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	var mbe *http.MaxBytesError
	var arg *op.ArgError
	if !errors.As(err, &ae) && !errors.As(err, &mbe) && !errors.As(err, &arg) {
		t.Fatalf("refused with %T %v: would be a 500", err, err)
	}
	status, body, _ := classify(httptest.NewRequest("GET", "/", nil), err)
	if status < 400 || status >= 500 || body.Code == "" || body.Message == "" {
		t.Fatalf("refusal maps to %d %+v", status, body)
	}
}

// bodyRequest is a request carrying data as its body, bounded like the
// REST routes' bodies.
func bodyRequest(data []byte, limit int64) *http.Request {
	r := httptest.NewRequest("POST", "/", bytes.NewReader(data))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, limit)
	return r
}

// FuzzRequestBody: the JSON body decoders (readBody, objectBody, the
// typed getters, propertiesBody) and the checks of what they read (op's
// Validate, chatio.WireEvent).
func FuzzRequestBody(f *testing.F) {
	f.Add([]byte(`{"type":"message","text":"hi","customId":"c1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 16
		b, err := objectBody(bodyRequest(data, limit), false)
		if err != nil {
			refusal(t, err)
		} else {
			if !utf8.Valid(data) {
				t.Fatalf("accepted invalid UTF-8: %q", data)
			}
			for _, key := range []string{"text", "type", "customId", "value", "comment", "name"} {
				if s, ok, err := b.optString(key); err != nil {
					refusal(t, err)
				} else if ok && !utf8.ValidString(s) {
					t.Fatalf("%s: invalid UTF-8 %q", key, s)
				}
			}
			for _, key := range []string{"events", "scope", "properties"} {
				if v := b.get(key); v != nil && !json.Valid(v) {
					t.Fatalf("%s: invalid JSON %q", key, v)
				}
			}
			if err := (op.StartChat{Scope: b.get("scope"), Events: b.get("events"), Properties: b.get("properties")}).Validate(); err != nil {
				refusal(t, err)
			}
			if err := (op.SendEvent{ChatID: "c", Event: b.raw}).Validate(); err != nil {
				refusal(t, err)
			} else {
				ev := chatio.WireEvent(b.obj)
				out, err := json.Marshal(ev)
				if err != nil || !json.Valid(out) {
					t.Fatalf("accepted event does not encode: %v", err)
				}
				var typed struct {
					Type string `json:"type"`
				}
				if json.Unmarshal(out, &typed) != nil || typed.Type == "" {
					t.Fatalf("accepted event without a type: %s", out)
				}
			}
		}
		props, err := propertiesBody(bodyRequest(data, limit))
		if err != nil {
			refusal(t, err)
		} else if !json.Valid(props) || jsonobj.Kind(props) != 'o' {
			t.Fatalf("properties %q accepted", props)
		}
	})
}

// FuzzPathID: path parameters (chat and thread ids) as the router hands
// them over, still escaped.
func FuzzPathID(f *testing.F) {
	f.Add("CHAT1")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.PathUnescape(raw)
		if err != nil {
			return // pathID refuses it: invalidArgs
		}
		if err := op.CheckID("chat", v); err != nil {
			refusal(t, err)
			return
		}
		if v == "" || len(v) > op.MaxIDLen || !utf8.ValidString(v) {
			t.Fatalf("accepted id %q", v)
		}
		for _, c := range v {
			if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
				t.Fatalf("accepted a control character in %q", v)
			}
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzQuery: pagination parameters and the thread id list.
func FuzzQuery(f *testing.F) {
	f.Add("limit=10&offset=0&ids=A,B")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return // the handler sees what ParseQuery kept; same calls below
		}
		for _, p := range []struct {
			name string
			max  int
		}{{"limit", op.MaxChatsLimit}, {"offset", 0}, {"limit", op.MaxThreadsLimit}} {
			n, err := queryInt(q, p.name, 7)
			if err == nil {
				switch {
				case p.name == "offset":
					err = op.GetChatsSummary{Offset: n}.Validate()
				case p.max == op.MaxChatsLimit:
					err = op.GetChatsSummary{Limit: n}.Validate()
				default:
					err = op.GetChatThreadsSummary{ChatID: "c", Limit: n}.Validate()
				}
			}
			if err != nil {
				refusal(t, err)
				continue
			}
			if n < 0 || (p.max > 0 && n > p.max) || n > 1<<31-1 {
				t.Fatalf("%s=%v accepted as %d", p.name, q[p.name], n)
			}
			if vs := q[p.name]; len(vs) == 1 && strconv.Itoa(n) != strings.TrimLeft(vs[0], "0") && n != 0 {
				t.Fatalf("%s=%q read as %d", p.name, vs[0], n)
			}
		}
		for _, v := range q["ids"] {
			for id := range strings.SplitSeq(v, ",") {
				if err := op.CheckID("thread", id); err != nil {
					refusal(t, err)
				}
			}
		}
	})
}

// FuzzBearer: the Authorization header.
func FuzzBearer(f *testing.F) {
	f.Add("Bearer abc.def")
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{h}
		token, err := bearer(r)
		if err != nil {
			refusal(t, err)
			return
		}
		if token == "" || len(token) > maxTokenLen || !printableASCII(token) {
			t.Fatalf("accepted token %q from %q", token, h)
		}
		if !strings.HasSuffix(strings.TrimSpace(h), token) {
			t.Fatalf("token %q is not the header's %q", token, h)
		}
	})
}

// FuzzMultipartForm: the file upload's form reader (openUploadForm and
// NextPart: the customId field in either order, skipped fields, a second
// file or customId, a body cut anywhere). The form ends well only with its
// closing boundary, one file within its limit and at most one customId;
// every failure is a refusal of the contract.
func FuzzMultipartForm(f *testing.F) {
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"customId\"\r\n\r\nc1\r\n" +
		"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B--\r\n"))
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n" +
		"--B\r\nContent-Disposition: form-data; name=\"customId\"\r\n\r\nc1\r\n--B--"))
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--B\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		const limit = 1 << 16
		r := httptest.NewRequest("POST", "/", http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(body)), limit))
		r.Header.Set("Content-Type", "multipart/form-data; boundary=B")
		form, err := openUploadForm(r, 1<<10)
		if err != nil {
			refusal(t, err)
			return
		}
		var files, customIDs int
		for {
			p, err := form.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				refusal(t, err)
				return
			}
			if p.File == nil {
				customIDs++
				if len(p.CustomID) > maxCustomIDLen || !utf8.ValidString(p.CustomID) {
					t.Fatalf("customId %q accepted", p.CustomID)
				}
				continue
			}
			files++
			n, err := io.Copy(io.Discard, p.File)
			if err != nil {
				refusal(t, err)
				return
			}
			if n > 1<<10 {
				t.Fatalf("read %d bytes past the file limit", n)
			}
		}
		if files != 1 || customIDs > 1 {
			t.Fatalf("a form with %d files and %d customIds ended well", files, customIDs)
		}
		if !bytes.Contains(body, []byte("\r\n--B--")) {
			t.Fatalf("a form without its closing boundary ended well: %q", body)
		}
	})
}
