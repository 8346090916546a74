package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// maxCustomIDLen bounds the customId form field.
const maxCustomIDLen = 4 << 10

// maxIgnoredPart bounds what is read of a form part the gateway ignores.
const maxIgnoredPart = 16 << 10

var (
	errCustomIDAfterFile = invalidArgs("the customId field must come before the file part")
	errSecondFile        = invalidArgs("only one file part is allowed")
)

// sendFile serves POST /v1/chats/{chat}/files: multipart/form-data with the
// part "file" and the optional field "customId" (before the file). The file
// part is streamed straight into the upstream upload, never held whole in
// memory; more than 10 MiB → 413 with the SDK's reason.
func (s *Server) sendFile(w http.ResponseWriter, r *http.Request) {
	s.rest(func(r *http.Request, token string) (int, any, error) {
		chat, err := pathID(r, "chat")
		if err != nil {
			return 0, nil, err
		}
		bodyLimit := s.cfg.MaxFileBytes + fileBodyOverhead
		if r.ContentLength > bodyLimit {
			return 0, nil, tooLarge(fileTooBig(s.cfg.MaxFileBytes))
		}
		r.Body = http.MaxBytesReader(w, r.Body, bodyLimit)
		mr, err := r.MultipartReader()
		if err != nil {
			return 0, nil, invalidArgs("request body must be multipart/form-data with a part named file")
		}
		part, customID, err := filePart(mr)
		if err != nil {
			return 0, nil, s.fileError(err)
		}
		filename := part.FileName()
		if filename == "" || !utf8.ValidString(filename) {
			filename = "file"
		}
		src := &fileReader{part: part, mr: mr, max: s.cfg.MaxFileBytes}

		var res any
		err = s.withSession(r.Context(), token, func(sess *session.Session) error {
			return sess.Do(r.Context(), func(ctx context.Context, c *chatio.Client) error {
				start := time.Now()
				raw, err := c.SendFile(ctx, chat, customID, filename, part.Header.Get("Content-Type"), src)
				s.m.observeCall("send_file", start, err)
				if err != nil {
					return err
				}
				res = json.RawMessage(raw)
				if len(raw) == 0 {
					res = json.RawMessage("null")
				}
				return nil
			})
		})
		if err != nil {
			return 0, nil, s.fileError(err)
		}
		return http.StatusCreated, res, nil
	})(w, r)
}

// fileError gives a body over its limit the SDK's reason.
func (s *Server) fileError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(fileTooBig(s.cfg.MaxFileBytes))
	}
	return err
}

// fileTooBig is the SDK's reason for a file over limit bytes; for the
// default (10 MiB) exactly the SDK's text.
func fileTooBig(limit int64) string {
	return fmt.Sprintf("The file is too big (max size is %.2f MB).", float64(limit)/(1<<20))
}

// filePart reads the form up to its file part, taking customId on the way
// and skipping (bounded) any other field.
func filePart(mr *multipart.Reader) (*multipart.Part, string, error) {
	var customID string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", invalidArgs("the file part is required")
		}
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				return nil, "", err
			}
			return nil, "", invalidArgs("malformed multipart body")
		}
		switch p.FormName() {
		case "file":
			return p, customID, nil
		case "customId":
			b, err := io.ReadAll(io.LimitReader(p, maxCustomIDLen+1))
			if err != nil {
				return nil, "", multipartReadError(err)
			}
			if len(b) > maxCustomIDLen || !utf8.Valid(b) {
				return nil, "", invalidArgs("customId must be a UTF-8 string of at most 4096 bytes")
			}
			customID = string(b)
		default:
			if err := skipPart(p); err != nil {
				return nil, "", err
			}
		}
	}
}

func skipPart(p *multipart.Part) error {
	n, err := io.Copy(io.Discard, io.LimitReader(p, maxIgnoredPart+1))
	if err != nil {
		return multipartReadError(err)
	}
	if n > maxIgnoredPart {
		return invalidArgs("form field " + strings.ToValidUTF8(p.FormName(), "?") + " is too large")
	}
	return nil
}

func multipartReadError(err error) error {
	if errors.As(err, new(*http.MaxBytesError)) {
		return err
	}
	return invalidArgs("malformed multipart body")
}

// fileReader is the file part as the upload reads it. At the part's end it
// reads the rest of the form before reporting EOF: a customId or a second
// file after the file part fails the read, which aborts the upload.
type fileReader struct {
	part    *multipart.Part
	mr      *multipart.Reader
	max     int64 // the most bytes the file may have (Config.MaxFileBytes)
	n       int64 // bytes read so far
	checked bool
}

func (f *fileReader) Read(p []byte) (int, error) {
	n, err := f.part.Read(p)
	f.n += int64(n)
	if f.n > f.max {
		return n, tooLarge(fileTooBig(f.max))
	}
	if errors.Is(err, io.EOF) && !f.checked {
		f.checked = true
		if rest := f.rest(); rest != nil {
			return n, rest
		}
	}
	return n, err
}

func (f *fileReader) rest() error {
	for {
		p, err := f.mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return multipartReadError(err)
		}
		switch p.FormName() {
		case "customId":
			return errCustomIDAfterFile
		case "file":
			return errSecondFile
		}
		if err := skipPart(p); err != nil {
			return err
		}
	}
}
