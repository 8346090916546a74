package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

// upstreamUpload is what the upstream read of one upload: the form's parts
// in order, the fields' values (the file's as its size), and whether the
// form ended with its closing boundary.
type upstreamUpload struct {
	order    []string
	fields   map[string]string
	complete bool
}

// uploadTap is the simulator behind a proxy that reads every upload as it
// passes (recording it) on its way to the simulator.
type uploadTap struct {
	sim *chatiosim.Server
	srv *httptest.Server

	signalAt int           // file bytes after which fileSeen is closed
	fileSeen chan struct{} // closed once an upload's file has reached signalAt bytes
	once     sync.Once

	// hold, when set, holds the simulator's answer to each upload until it
	// is closed (or the upload's request ends); formRead gets a value once
	// the held upload's form has been read.
	hold     chan struct{}
	formRead chan struct{}

	mu   sync.Mutex
	seen []upstreamUpload
}

// newUploadEnv is a gateway whose upstream is the simulator behind an
// uploadTap.
func newUploadEnv(t *testing.T, opts ...func(*envOptions)) (*env, *uploadTap) {
	t.Helper()
	sim, simURL := chatiotest.Start(t, chatiosim.Config{})
	_ = simURL
	tap := &uploadTap{sim: sim, fileSeen: make(chan struct{}), signalAt: 64 << 10}
	tap.srv = httptest.NewServer(tap)
	t.Cleanup(tap.srv.Close)
	up := "ws" + strings.TrimPrefix(tap.srv.URL, "http") + "/customer/v0.5"
	e := newEnv(t, append(opts, func(o *envOptions) { o.upstreamURL = up })...)
	e.sim = sim
	return e, tap
}

func (tap *uploadTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/action/send_file") {
		tap.sim.ServeHTTP(w, r)
		return
	}
	pr, pw := io.Pipe()
	rec := upstreamUpload{fields: map[string]string{}}
	read := make(chan struct{})
	go func() {
		defer close(read)
		tee := io.TeeReader(r.Body, pw)
		err := tap.parse(tee, r.Header.Get("Content-Type"), &rec)
		if err == nil {
			_, err = io.Copy(io.Discard, tee)
		}
		// Recorded before the simulator can see the body's end: an upload
		// answered is recorded.
		tap.mu.Lock()
		tap.seen = append(tap.seen, rec)
		tap.mu.Unlock()
		pw.CloseWithError(err)
	}()
	r2 := r.Clone(r.Context())
	r2.Body = pr
	if tap.hold == nil {
		tap.sim.ServeHTTP(w, r2)
	} else {
		rec := httptest.NewRecorder()
		tap.sim.ServeHTTP(rec, r2)
		tap.formRead <- struct{}{}
		select {
		case <-tap.hold:
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		case <-r.Context().Done():
		}
	}
	pr.CloseWithError(errors.New("the simulator has answered"))
	<-read
}

func (tap *uploadTap) parse(body io.Reader, contentType string, rec *upstreamUpload) error {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			rec.complete = true
			return nil
		}
		if err != nil {
			return err
		}
		rec.order = append(rec.order, p.FormName())
		if p.FormName() != "payload.file" {
			b, err := io.ReadAll(io.LimitReader(p, 64<<10))
			if err != nil {
				return err
			}
			rec.fields[p.FormName()] = string(b)
			continue
		}
		n := 0
		buf := make([]byte, 32<<10)
		for {
			k, err := p.Read(buf)
			n += k
			if n >= tap.signalAt {
				tap.once.Do(func() { close(tap.fileSeen) })
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		rec.fields["payload.file"] = fmt.Sprint(n)
	}
}

// uploads returns what the upstream saw, once every upload that reached it
// has been read to its end: in the order they were read to their end.
func (tap *uploadTap) uploads() []upstreamUpload {
	tap.srv.Close() // waits for the handlers
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return tap.seen
}

const formB = "multipart/form-data; boundary=B"

func filePartB(content string) string {
	return "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n" + content
}

func fieldB(name, value string) string {
	return "--B\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value
}

// TestSendFileCustomIDEitherOrder: customId before or after the file (as
// curl -F file=@x -F customId=1 sends it) goes upstream in the order it
// came, the file streamed before the customId after it has arrived; the
// answer is the upload's {url} and the file's event carries the custom id.
func TestSendFileCustomIDEitherOrder(t *testing.T) {
	e, tap := newUploadEnv(t)
	chat, _ := e.startChat("tok")
	path := "/v1/chats/" + chat + "/files"

	// before the file
	body := fieldB("customId", "early-1") + "\r\n" + filePartB("hello, file") + "\r\n--B--\r\n"
	m := expect(t, e.do("POST", path, "tok", body, "Content-Type: "+formB), 201, "")
	if u, _ := m["url"].(string); u == "" || len(m) != 1 {
		t.Fatalf("answer %v, want {url}", m)
	}

	// after the file, which goes upstream before the customId is sent
	first, rest := strings.Repeat("a", tap.signalAt), strings.Repeat("b", 100<<10)
	pr, pw := io.Pipe()
	var fed sync.WaitGroup
	fed.Go(func() {
		_, _ = io.WriteString(pw, filePartB(first))
		select {
		case <-tap.fileSeen:
			_, _ = io.WriteString(pw, rest+"\r\n"+fieldB("customId", "late-1")+"\r\n--B--\r\n")
			_ = pw.Close()
		case <-time.After(10 * time.Second):
			pw.CloseWithError(errors.New("the upstream never saw the file's first bytes: not streamed"))
		}
	})
	r := e.do("POST", path, "tok", pr, "Content-Type: "+formB)
	fed.Wait()
	m = expect(t, r, 201, "")
	if u, _ := m["url"].(string); u == "" || len(m) != 1 {
		t.Fatalf("answer %v, want {url}", m)
	}

	evs := e.sim.Events(chat)
	var ids []string
	for _, ev := range evs {
		if ev.Type == "file" {
			var f struct {
				CustomID string `json:"custom_id"`
			}
			_ = json.Unmarshal(ev.Raw, &f)
			ids = append(ids, f.CustomID)
		}
	}
	if fmt.Sprint(ids) != "[early-1 late-1]" {
		t.Errorf("file events' custom ids %v, want [early-1 late-1]", ids)
	}

	seen := tap.uploads()
	if len(seen) != 2 {
		t.Fatalf("upstream saw %d uploads: %+v", len(seen), seen)
	}
	for i, want := range []struct{ order, customID, size string }{
		{"[payload.chat_id payload.custom_id payload.file]", "early-1", "11"},
		{"[payload.chat_id payload.file payload.custom_id]", "late-1", fmt.Sprint(len(first) + len(rest))},
	} {
		s := seen[i]
		if fmt.Sprint(s.order) != want.order || !s.complete || s.fields["payload.custom_id"] != want.customID ||
			s.fields["payload.file"] != want.size || s.fields["payload.chat_id"] != chat {
			t.Errorf("upload %d: upstream saw %+v, want parts %s, custom id %s, %s file bytes", i, s, want.order, want.customID, want.size)
		}
	}
}

// TestSendFileCutBody: a multipart body that ends before its closing
// boundary, wherever it is cut, is 400 INVALID_ARGS, and the upstream never
// gets it as a complete form (nor the simulator as a file).
func TestSendFileCutBody(t *testing.T) {
	e, tap := newUploadEnv(t)
	chat, _ := e.startChat("tok")
	path := "/v1/chats/" + chat + "/files"
	file := filePartB("some bytes")
	for _, body := range []string{
		file,
		file + "\r\n",
		file + "\r\n--B",
		file + "\r\n--B\r\n",
		file + "\r\n--B-",
		file + "\r\n--B\r\nContent-Disposition: form-data; name=\"customId\"\r\n",
		file + "\r\n" + fieldB("customId", "c1"),
		file + "\r\n" + fieldB("customId", "c1") + "\r\n--B\r\n",
		fieldB("customId", "c1") + "\r\n" + file + "\r\n--B\r\n",
	} {
		r := e.do("POST", path, "tok", body, "Content-Type: "+formB)
		if r.status != 400 || !bytes.Contains(r.body, []byte(`"code":"INVALID_ARGS"`)) {
			t.Errorf("body cut after %q: %d %s, want 400 INVALID_ARGS", body[len(body)-min(len(body), 12):], r.status, r.body)
		}
	}
	// the gateway is still fine
	expect(t, e.do("POST", path, "tok", file+"\r\n--B--", "Content-Type: "+formB), 201, "")

	// (The cut uploads' records come in any order.)
	complete := 0
	for _, s := range tap.uploads() {
		if s.complete {
			complete++
		}
	}
	if complete != 1 {
		t.Errorf("%d uploads reached the upstream complete, want 1 (the good one)", complete)
	}
	if evs := e.sim.Events(chat); len(evs) != 1 {
		t.Errorf("%d file events, want 1 (the good upload)", len(evs))
	}
}

// TestStopUploads: an upload still streaming when StopUploads is called,
// its handler waiting for more of the client's body, is answered 503
// OVERLOADED with Retry-After at once and never reaches the upstream
// complete; an upload that comes later is refused the same way.
func TestStopUploads(t *testing.T) {
	e, tap := newUploadEnv(t)
	chat, _ := e.startChat("tok")
	path := "/v1/chats/" + chat + "/files"

	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		_, _ = io.WriteString(pw, filePartB(strings.Repeat("a", tap.signalAt)))
		select { // then the client stalls
		case <-tap.fileSeen:
			e.api.StopUploads()
		case <-time.After(10 * time.Second):
			pw.CloseWithError(errors.New("the upload never reached the upstream"))
		}
	}()
	r := e.do("POST", path, "tok", pr, "Content-Type: "+formB)
	expect(t, r, 503, CodeOverloaded)
	if r.header.Get("Retry-After") != "3" {
		t.Errorf("Retry-After %q, want 3", r.header.Get("Retry-After"))
	}

	body := filePartB("x") + "\r\n--B--\r\n"
	r = e.do("POST", path, "tok", body, "Content-Type: "+formB)
	expect(t, r, 503, CodeOverloaded)
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}

	for i, s := range tap.uploads() {
		if s.complete {
			t.Errorf("upload %d reached the upstream complete: %+v", i, s)
		}
	}
	if evs := e.sim.Events(chat); len(evs) != 0 {
		t.Errorf("%d file events after StopUploads", len(evs))
	}
}

// TestStopUploadsAwaitingAnswer: an upload whose whole form has gone
// upstream, waiting only for chat.io's answer when StopUploads is called,
// is answered 504 TIMEOUT: the file may have arrived (here it has), so
// "send it again" (503) would not be true.
func TestStopUploadsAwaitingAnswer(t *testing.T) {
	e, tap := newUploadEnv(t)
	tap.hold, tap.formRead = make(chan struct{}), make(chan struct{}, 1)
	chat, _ := e.startChat("tok")
	go func() {
		select {
		case <-tap.formRead:
			e.api.StopUploads()
		case <-time.After(10 * time.Second):
		}
	}()
	body := fieldB("customId", "c1") + "\r\n" + filePartB("hello") + "\r\n--B--\r\n"
	expect(t, e.do("POST", "/v1/chats/"+chat+"/files", "tok", body, "Content-Type: "+formB), 504, CodeTimeout)
	close(tap.hold)
	if seen := tap.uploads(); len(seen) != 1 || !seen[0].complete {
		t.Fatalf("upstream saw %+v, want the one complete form", seen)
	}
}
