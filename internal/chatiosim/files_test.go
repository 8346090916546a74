package chatiosim

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

type upload struct {
	chatID, customID, name, contentType string
	file                                io.Reader
	token                               string
}

// sendFile posts a multipart upload built on the fly (chat_id, file, custom_id).
func sendFile(t *testing.T, base string, u upload) (int, map[string]any) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if u.chatID != "" {
				if err := mw.WriteField("payload.chat_id", u.chatID); err != nil {
					return err
				}
			}
			if u.file != nil {
				h := textproto.MIMEHeader{}
				h.Set("Content-Disposition", `form-data; name="payload.file"; filename="`+u.name+`"`)
				if u.contentType != "" {
					h.Set("Content-Type", u.contentType)
				}
				w, err := mw.CreatePart(h)
				if err != nil {
					return err
				}
				if _, err := io.Copy(w, u.file); err != nil {
					return err
				}
			}
			if u.customID != "" {
				if err := mw.WriteField("payload.custom_id", u.customID); err != nil {
					return err
				}
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequest(http.MethodPost, strings.Replace(base, "ws", "http", 1)+"/action/send_file?license_id=1", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_ = pr.CloseWithError(io.ErrClosedPipe) // stop the writer if the server answered early
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func pngBytes(t *testing.T, w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSendFile(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	c.login("tok")
	other := dial(t, base)
	other.login("tok")
	chatID, threadID := c.newChat()
	other.expectPush("incoming_chat_thread")

	status, out := sendFile(t, base, upload{chatID: chatID, customID: "up-1", name: "cat.png", contentType: "image/png", file: bytes.NewReader(pngBytes(t, 3, 2)), token: "tok"})
	if status != 200 {
		t.Fatalf("status %d %v", status, out)
	}
	url, _ := out["payload"].(map[string]any)["url"].(string)
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/cat.png") || !strings.Contains(url, "/files/") {
		t.Fatalf("url %q", url)
	}
	for _, x := range []*wsClient{c, other} {
		f := x.expectPush("incoming_event")
		var ie incomingEvent
		f.decode(t, &ie)
		e := ie.Event
		if ie.ChatID != chatID || ie.ThreadID != threadID || e.Type != "file" || e.URL != url || e.CT != "image/png" ||
			e.Width == nil || *e.Width != 3 || e.Height == nil || *e.Height != 2 || e.CustomID == nil || *e.CustomID != "up-1" {
			t.Fatalf("file event %s", f.Payload)
		}
	}
	resp, err := testHTTP.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET file: %d", resp.StatusCode)
	}

	// a PDF without a content type: sniffed, no dimensions
	status, _ = sendFile(t, base, upload{chatID: chatID, name: "a.pdf", file: strings.NewReader("%PDF-1.4 hello"), token: "tok"})
	if status != 200 {
		t.Fatalf("pdf status %d", status)
	}
	f := c.expectPush("incoming_event")
	if !strings.Contains(string(f.Payload), `"content_type":"application/pdf"`) || strings.Contains(string(f.Payload), "width") {
		t.Fatalf("pdf event %s", f.Payload)
	}
	other.expectPush("incoming_event")
	if evs := s.Events(chatID); len(evs) != 2 || evs[0].Type != "file" {
		t.Fatalf("events %+v", evs)
	}

	// errors
	if status, out := sendFile(t, base, upload{chatID: chatID, name: "a", file: strings.NewReader("x"), token: "expired:x"}); status != 401 || out["error"].(map[string]any)["type"] != "authentication" {
		t.Fatalf("bad token: %d %v", status, out)
	}
	if status, _ := sendFile(t, base, upload{chatID: chatID, name: "a", file: strings.NewReader("x")}); status != 401 {
		t.Fatalf("no token: %d", status)
	}
	if status, out := sendFile(t, base, upload{chatID: "NOPE", name: "a", file: strings.NewReader("x"), token: "tok"}); status != 404 || out["error"].(map[string]any)["type"] != "not_found" {
		t.Fatalf("unknown chat: %d %v", status, out)
	}
	if status, _ := sendFile(t, base, upload{chatID: chatID, name: "a", file: strings.NewReader("x"), token: "someone-else"}); status != 404 {
		t.Fatalf("other customer's chat: %d", status)
	}
	if status, _ := sendFile(t, base, upload{chatID: chatID, token: "tok"}); status != 400 {
		t.Fatalf("no file: %d", status)
	}
	if status, _ := sendFile(t, base, upload{name: "a", file: strings.NewReader("x"), token: "tok"}); status != 400 {
		t.Fatalf("no chat: %d", status)
	}
	other.noFrame(50e6)
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestSendFileTooBig(t *testing.T) {
	_, base := start(t, Config{})
	c := dial(t, base)
	c.login("tok")
	chatID, _ := c.newChat()
	status, out := sendFile(t, base, upload{chatID: chatID, name: "big.bin", file: io.LimitReader(zeros{}, 10<<20+1), token: "tok"})
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", status)
	}
	e, _ := out["error"].(map[string]any)
	if e["type"] != "validation" || e["message"] != "The file is too big (max size is 10.00 MB)." {
		t.Fatalf("error %v", out)
	}
	// exactly the limit is fine
	status, _ = sendFile(t, base, upload{chatID: chatID, name: "ok.bin", file: io.LimitReader(zeros{}, 10<<20), token: "tok"})
	if status != 200 {
		t.Fatalf("at the limit: %d", status)
	}
	c.expectPush("incoming_event")
}
