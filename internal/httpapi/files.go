package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// maxCustomIDLen bounds the customId form field.
const maxCustomIDLen = 4 << 10

// maxIgnoredPart bounds what is read of a form part the gateway ignores.
const maxIgnoredPart = 16 << 10

// maxBoundaryLen is the longest multipart boundary (RFC 2046: 1 to 70
// characters).
const maxBoundaryLen = 70

var (
	errNotMultipart   = invalidArgs("request body must be multipart/form-data with a part named file")
	errNoFile         = invalidArgs("the file part is required")
	errSecondFile     = invalidArgs("only one file part is allowed")
	errSecondCustomID = invalidArgs("only one customId field is allowed")
	errBadCustomID    = invalidArgs("customId must be a UTF-8 string of at most 4096 bytes")
	errMalformedForm  = invalidArgs("malformed multipart body")
	errFormCut        = invalidArgs("malformed multipart body: it ends before its closing boundary")
)

// errUploadsStopped is the cause of an upload's context ended by
// StopUploads.
var errUploadsStopped = errors.New("httpapi: uploads stopped for shutdown")

// sendFile serves POST /v1/chats/{chat}/files: multipart/form-data with the
// part "file" and the optional field "customId", in either order. The
// parts are streamed upstream in the order they came, as they arrive: the
// file is never held whole in memory, and the form is complete upstream
// only once the client's form has ended with its closing boundary. More
// than MaxFileBytes of file → 413 with the SDK's reason; a body cut short
// or malformed → 400; an upload still running at StopUploads → 503
// OVERLOADED with Retry-After, or 504 TIMEOUT when the whole form had
// gone upstream and only the answer was missing. The answer is the
// upload's result as the SDK resolves it ({url}); the custom id goes
// upstream with the file and comes back on the file's event.
func (s *Server) sendFile(w http.ResponseWriter, r *http.Request) {
	s.rest(func(r *http.Request, token string) (int, any, error) {
		chat, err := pathParam(r, "chat")
		if err != nil {
			return 0, nil, err
		}
		if err := op.CheckID("chat", chat); err != nil {
			return 0, nil, err
		}
		bodyLimit := s.cfg.MaxFileBytes + fileBodyOverhead
		if r.ContentLength > bodyLimit {
			return 0, nil, tooLarge(fileTooBig(s.cfg.MaxFileBytes))
		}
		r.Body = http.MaxBytesReader(w, r.Body, bodyLimit)
		ctx, done := s.uploadContext(w, r)
		defer done()
		form, err := openUploadForm(r, s.cfg.MaxFileBytes)
		if err != nil {
			return 0, nil, s.uploadError(ctx, nil, err)
		}

		var res json.RawMessage
		if s.pool.Clustered() {
			// Straight upstream from this replica, with or without the
			// session here (session.Pool.SendFile).
			traced := session.WithCallTrace(ctx, &session.CallTrace{Done: func(start time.Time, err error) {
				s.m.observeCall(op.MethodSendFile, start, form.outcome(ctx, err))
			}})
			res, err = s.pool.SendFile(traced, token, chat, form)
		} else {
			err = s.call(ctx, token, op.MethodSendFile, func(ctx context.Context, sess *session.Session) error {
				var err error
				res, err = sess.SendFile(ctx, chat, form)
				return err
			}, func(err error) error { return form.outcome(ctx, err) })
		}
		if err != nil {
			return 0, nil, s.uploadError(ctx, form, err)
		}
		return http.StatusCreated, res, nil
	})(w, r)
}

// StopUploads ends every file upload still running, and any that starts
// later: the upstream upload is cut, a read of the client's body is
// unblocked, and the client is answered. An upload whose form had not all
// gone upstream never completes there: 503 OVERLOADED with Retry-After
// (send the file again, to this or another replica). One that was only
// waiting for chat.io's answer may have arrived: 504 TIMEOUT, as for any
// upload whose answer comes too late (its file event tells). For a
// shutdown: an upload that cannot finish in time gets an answer instead of
// having its connection closed under it. Idempotent.
func (s *Server) StopUploads() { s.stopUploads(errUploadsStopped) }

// uploadContext is the upload's context: r's, ended by StopUploads too.
// When it ends while the upload runs, a read of the client's body is
// unblocked (its read deadline set to now): the upload waits for no more
// of a body it will not send. done releases it.
func (s *Server) uploadContext(w http.ResponseWriter, r *http.Request) (ctx context.Context, done func()) {
	ctx, cancel := context.WithCancelCause(r.Context())
	stopStop := context.AfterFunc(s.uploads, func() { cancel(context.Cause(s.uploads)) })
	rc := http.NewResponseController(w)
	unblocked := make(chan struct{})
	stopUnblock := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		stopReading(r)
		_ = rc.SetReadDeadline(time.Now())
	})
	return ctx, func() {
		if !stopUnblock() {
			<-unblocked // w must not be touched once the handler has returned
		}
		stopStop()
		cancel(nil)
	}
}

// uploadError is the answer to a failed upload: the end of its context
// first (a shutdown, the upload's deadline, the client gone), then the
// client's form (cut, malformed, too big; form is nil when it failed to
// open), then the upload's own error.
func (s *Server) uploadError(ctx context.Context, form *uploadForm, err error) error {
	if ctx.Err() != nil {
		switch {
		case !errors.Is(context.Cause(ctx), errUploadsStopped):
			return fmt.Errorf("upload: %w", ctx.Err())
		case form != nil && form.ended:
			// The whole form went upstream: the file may have arrived,
			// only its answer is missing.
			return fmt.Errorf("upload: sent, no answer before the shutdown: %w", chatio.ErrTimeout)
		default:
			return session.ErrDraining
		}
	}
	if form != nil && form.err != nil {
		return s.fileError(form.err)
	}
	return s.fileError(err)
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

// uploadForm is the client's multipart body as the upload reads it (a
// chatio.FileForm): the parts it forwards (customId and file) in the order
// they came, other fields skipped (bounded). The parts up to the file are
// read before the upload starts, so that a form without a file never goes
// upstream; those after it only once the file has been sent. The form
// ends (io.EOF) only when the client's body has reached its closing
// boundary. While SendFileForm runs, the form is its writer's alone; the
// handler reads err and ended once it has returned.
type uploadForm struct {
	mr       *multipart.Reader
	body     *closeWatch
	max      int64             // the most bytes the file may have (Config.MaxFileBytes)
	ahead    []chatio.FilePart // read before the upload started, not yet handed over
	file     bool              // the file part has been read
	customID bool              // a customId field has been read
	ended    bool              // NextPart has returned io.EOF: the whole form was handed to the upload
	err      error             // the first failure of the client's body or form
}

// openUploadForm reads r's multipart body up to and including the head of
// its file part.
func openUploadForm(r *http.Request, maxFile int64) (*uploadForm, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	boundary := params["boundary"]
	if err != nil || mt != "multipart/form-data" || boundary == "" || len(boundary) > maxBoundaryLen {
		return nil, errNotMultipart
	}
	body := &closeWatch{r: r.Body, delim: []byte("\r\n--" + boundary + "--")}
	f := &uploadForm{mr: multipart.NewReader(body, boundary), body: body, max: maxFile}
	for !f.file {
		p, err := f.read()
		if errors.Is(err, io.EOF) {
			return nil, errNoFile
		}
		if err != nil {
			return nil, err
		}
		f.ahead = append(f.ahead, p)
	}
	return f, nil
}

// NextPart is chatio.FileForm's: the next part to forward, io.EOF at the
// form's end.
func (f *uploadForm) NextPart() (chatio.FilePart, error) {
	if len(f.ahead) > 0 {
		p := f.ahead[0]
		f.ahead = f.ahead[1:]
		return p, nil
	}
	if f.err != nil {
		return chatio.FilePart{}, f.err
	}
	p, err := f.read()
	switch {
	case err == io.EOF: //nolint:errorlint // read returns io.EOF itself
		f.ended = true
	case err != nil:
		f.err = err
	}
	return p, err
}

// read reads the client's next part to forward, skipping any other.
func (f *uploadForm) read() (chatio.FilePart, error) {
	for {
		p, err := f.mr.NextPart()
		if err == io.EOF { //nolint:errorlint // the form's end is io.EOF itself; wrapped, it is a cut body
			if !f.body.closed {
				// A body cut right after a boundary line: the multipart
				// reader takes it for the form's end.
				return chatio.FilePart{}, errFormCut
			}
			return chatio.FilePart{}, io.EOF
		}
		if err != nil {
			return chatio.FilePart{}, bodyError(err)
		}
		switch p.FormName() {
		case "file":
			if f.file {
				return chatio.FilePart{}, errSecondFile
			}
			f.file = true
			filename := p.FileName()
			if filename == "" || !utf8.ValidString(filename) {
				filename = "file"
			}
			return chatio.FilePart{File: &fileReader{part: p, form: f}, Filename: filename,
				ContentType: p.Header.Get("Content-Type")}, nil
		case "customId":
			if f.customID {
				return chatio.FilePart{}, errSecondCustomID
			}
			f.customID = true
			b, err := io.ReadAll(io.LimitReader(p, maxCustomIDLen+1))
			if err != nil {
				return chatio.FilePart{}, bodyError(err)
			}
			if len(b) > maxCustomIDLen || !utf8.Valid(b) {
				return chatio.FilePart{}, errBadCustomID
			}
			return chatio.FilePart{CustomID: string(b)}, nil
		default:
			if err := skipPart(p); err != nil {
				return chatio.FilePart{}, err
			}
		}
	}
}

// outcome is the upload's error as the upstream-call metric counts it: a
// failure of the client's form is the client's (too_large or canceled),
// not the upstream's.
func (f *uploadForm) outcome(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case f.err == nil:
		return err
	}
	var ae *apiError
	if (errors.As(f.err, &ae) && ae.status == http.StatusRequestEntityTooLarge) || errors.As(f.err, new(*http.MaxBytesError)) {
		return chatio.ErrFileTooLarge
	}
	return context.Canceled
}

func skipPart(p *multipart.Part) error {
	n, err := io.Copy(io.Discard, io.LimitReader(p, maxIgnoredPart+1))
	if err != nil {
		return bodyError(err)
	}
	if n > maxIgnoredPart {
		return invalidArgs("form field " + strings.ToValidUTF8(p.FormName(), "?") + " is too large")
	}
	return nil
}

// bodyError is what a failed read of the client's multipart body answers:
// a body over its limit or a read deadline as they are (413; the
// deadline's owner decides), a body that ends too soon or is not a form
// 400.
func bodyError(err error) error {
	switch {
	case errors.As(err, new(*http.MaxBytesError)), errors.As(err, new(*apiError)), errors.Is(err, os.ErrDeadlineExceeded):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errFormCut
	default:
		return errMalformedForm
	}
}

// fileReader is the file part as the upload reads it: at most max bytes,
// a failure recorded as the form's.
type fileReader struct {
	part *multipart.Part
	form *uploadForm
	n    int64 // bytes read so far
}

func (f *fileReader) Read(p []byte) (int, error) {
	if f.form.err != nil {
		return 0, f.form.err
	}
	n, err := f.part.Read(p)
	f.n += int64(n)
	if f.n > f.form.max {
		err = tooLarge(fileTooBig(f.form.max))
	}
	if err != nil && err != io.EOF { //nolint:errorlint // the part's end is io.EOF itself
		err = bodyError(err)
		f.form.err = err
	}
	return n, err
}

// closeWatch passes the request body through and notes whether the form's
// close delimiter ("\r\n--" boundary "--") has gone by, which the
// multipart reader does not tell apart from a body cut after a boundary
// line.
type closeWatch struct {
	r      io.Reader
	delim  []byte
	tail   []byte // the last len(delim)-1 bytes read: a delimiter may span two reads
	closed bool
}

func (c *closeWatch) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.closed {
		c.scan(p[:n])
	}
	return n, err
}

func (c *closeWatch) scan(b []byte) {
	keep := len(c.delim) - 1
	if len(c.tail) > 0 {
		joint := append(c.tail, b[:min(len(b), keep)]...)
		if bytes.Contains(joint, c.delim) {
			c.closed = true
			return
		}
	}
	if bytes.Contains(b, c.delim) {
		c.closed = true
		return
	}
	if len(b) >= keep {
		c.tail = append(c.tail[:0], b[len(b)-keep:]...)
		return
	}
	c.tail = append(c.tail, b...)
	if len(c.tail) > keep {
		c.tail = c.tail[len(c.tail)-keep:]
	}
}
