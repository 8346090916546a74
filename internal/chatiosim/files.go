package chatiosim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image.DecodeConfig for uploads
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// fileInfo is what the simulator keeps of an upload: never its bytes.
type fileInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
}

const headKeep = 32 << 10 // bytes of an upload kept to sniff its type and image size

// headWriter keeps the first headKeep bytes written to it.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if room := headKeep - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func tooBigMessage(max int64) string {
	return fmt.Sprintf("The file is too big (max size is %.2f MB).", float64(max)/(1<<20))
}

// serveSendFile is POST /customer/v0.5/action/send_file?license_id=N.
func (s *Server) serveSendFile(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.closing:
		httpError(w, http.StatusServiceUnavailable, "service_unavailable", "server shutting down")
		return
	default:
	}
	_, known, status, msg := s.checkLicense(r)
	if status != 0 {
		httpError(w, status, chatio.ErrTypeValidation, msg)
		return
	}
	if !known {
		httpError(w, http.StatusNotFound, chatio.ErrTypeNotFound, "License not found")
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		httpError(w, http.StatusUnauthorized, chatio.ErrTypeAuthentication, "Missing or unsupported Authorization (expected Bearer)")
		return
	}
	custID, err := s.cfg.Tokens(bearer)
	if err != nil {
		httpError(w, http.StatusUnauthorized, chatio.ErrTypeAuthentication, err.Error())
		return
	}
	max := s.cfg.MaxFileSize
	r.Body = http.MaxBytesReader(w, r.Body, max+1<<20) // the file plus the small fields
	mr, err := r.MultipartReader()
	if err != nil {
		httpError(w, http.StatusBadRequest, chatio.ErrTypeValidation, "multipart/form-data expected")
		return
	}

	var chatID, customID string
	var hasCustomID bool
	var fi *fileInfo
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.uploadReadError(w, err, max)
			return
		}
		switch part.FormName() {
		case "payload.chat_id":
			chatID, err = smallField(part)
		case "payload.custom_id":
			customID, err = smallField(part)
			hasCustomID = true
		case "payload.file":
			fi, err = s.readFile(part, max)
		default:
			_, err = io.Copy(io.Discard, io.LimitReader(part, 64<<10))
		}
		_ = part.Close()
		if err != nil {
			s.uploadReadError(w, err, max)
			return
		}
	}
	if chatID == "" {
		httpError(w, http.StatusBadRequest, chatio.ErrTypeValidation, "payload.chat_id is required")
		return
	}
	if fi == nil {
		httpError(w, http.StatusBadRequest, chatio.ErrTypeValidation, "payload.file is required")
		return
	}

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "127.0.0.1"
	}
	fileURL := scheme + "://" + host + "/files/" + fi.ID + "/" + url.PathEscape(fi.Name)

	s.mu.Lock()
	c := s.getCustomer(custID)
	ch := s.chats[chatID]
	if ch == nil || ch.cust != c {
		s.mu.Unlock()
		httpError(w, http.StatusNotFound, chatio.ErrTypeNotFound, "Chat not found")
		return
	}
	var cid *string
	if hasCustomID {
		cid = &customID
	}
	s.files[fi.ID] = *fi
	s.addCustomerEvent(nil, nil, c, ch, fileSpec(fileURL, fi.ContentType, fi.Width, fi.Height, cid), "send_file", nil)
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, map[string]any{"payload": map[string]string{"url": fileURL}})
}

type tooBig struct{}

func (tooBig) Error() string { return "file too big" }

func (s *Server) uploadReadError(w http.ResponseWriter, err error, max int64) {
	var mbe *http.MaxBytesError
	var tb tooBig
	if errors.As(err, &tb) || errors.As(err, &mbe) {
		w.Header().Set("Connection", "close")
		httpError(w, http.StatusRequestEntityTooLarge, chatio.ErrTypeValidation, tooBigMessage(max))
		return
	}
	httpError(w, http.StatusBadRequest, chatio.ErrTypeValidation, "malformed multipart body")
}

func smallField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, 4<<10))
	return strings.TrimSpace(string(b)), err
}

// readFile streams the file part: it counts and hashes it and keeps only its
// first bytes (type sniffing, image size). More than max bytes → tooBig.
func (s *Server) readFile(p *multipart.Part, max int64) (*fileInfo, error) {
	h := sha256.New()
	head := &headWriter{}
	n, err := io.Copy(io.MultiWriter(h, head), io.LimitReader(p, max+1))
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, tooBig{}
	}
	name := path.Base(strings.ReplaceAll(p.FileName(), "\\", "/"))
	if name == "." || name == "/" || name == "" {
		name = "file"
	}
	ct := p.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		ct = mt
	} else {
		ct = ""
	}
	if ct == "" || ct == "application/octet-stream" {
		if sniff, _, err := mime.ParseMediaType(http.DetectContentType(head.b)); err == nil {
			ct = sniff
		}
	}
	fi := &fileInfo{Name: name, ContentType: ct, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	if strings.HasPrefix(ct, "image/") {
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(head.b)); err == nil && cfg.Width > 0 && cfg.Height > 0 {
			fi.Width, fi.Height = cfg.Width, cfg.Height
		}
	}
	s.mu.Lock()
	fi.ID = strings.ToLower(s.newID())
	s.mu.Unlock()
	return fi, nil
}

// serveFile is GET /files/{id}/{name}: the simulator keeps no file bytes, so
// it answers a known upload with its metadata (JSON, header
// X-Chatio-Sim-Stub: 1) and anything else with 404.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	fi, ok := s.files[chi.URLParam(r, "id")]
	s.mu.Unlock()
	if !ok {
		httpError(w, http.StatusNotFound, chatio.ErrTypeNotFound, "File not found")
		return
	}
	w.Header().Set("X-Chatio-Sim-Stub", "1")
	writeJSON(w, http.StatusOK, fi)
}
