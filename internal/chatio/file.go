package chatio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// MaxFileSize is the upstream's limit for one uploaded file, in bytes.
const MaxFileSize = 10 << 20

// maxFileAnswer bounds how much of the upload's answer is read.
const maxFileAnswer = 1 << 20

// errUploadEnded cuts the form writer off once the request is over.
var errUploadEnded = errors.New("chatio: upload ended")

// FileForm is an upload's form as SendFileForm reads it, part by part:
// NextPart returns the parts in the order they are to be sent, then io.EOF
// once the form has ended. A part's File is read to its end before
// NextPart is called again. An error from NextPart or from a File's Read
// aborts the upload.
type FileForm interface {
	NextPart() (FilePart, error)
}

// FilePart is one part of an upload's form: the file (File set) or the
// custom id field (File nil).
type FilePart struct {
	// File is the file's content, read to io.EOF; nil for the custom id.
	File        io.Reader
	Filename    string // the file part's name
	ContentType string // the file part's media type; empty → application/octet-stream
	// CustomID is the payload.custom_id field when File is nil; an empty
	// one is not sent.
	CustomID string
}

// errFormNoFile and errFormTwice are forms SendFileForm refuses to end.
var (
	errFormNoFile = errors.New("chatio: send_file: the form has no file part")
	errFormTwice  = errors.New("chatio: send_file: the form has a second file or custom id")
)

// SendFile uploads one file for chatID over HTTP, as SendFileForm does for
// the form of the file read from r, then customID (when non-empty): the
// order the SDK sends.
func (c *Client) SendFile(ctx context.Context, chatID, customID, filename, contentType string, r io.Reader) (json.RawMessage, error) {
	parts := []FilePart{{File: r, Filename: filename, ContentType: contentType}}
	if customID != "" {
		parts = append(parts, FilePart{CustomID: customID})
	}
	return c.SendFileForm(ctx, chatID, &fixedForm{parts: parts})
}

// fixedForm is a FileForm of parts known up front.
type fixedForm struct{ parts []FilePart }

func (f *fixedForm) NextPart() (FilePart, error) {
	if len(f.parts) == 0 {
		return FilePart{}, io.EOF
	}
	p := f.parts[0]
	f.parts = f.parts[1:]
	return p, nil
}

// SendFileForm uploads one file for chatID over HTTP: POST {http(s) form
// of URL}/action/send_file?license_id=N with "Authorization: Bearer
// <token>" and a multipart/form-data body built on the fly, never held in
// memory: payload.chat_id, then the parts of form in their order
// (payload.file, and payload.custom_id when given), each sent as form
// yields it. The body's closing boundary is sent only once form has ended
// (io.EOF) with exactly one file part and at most one custom id: a form
// that fails or is cut short never reaches the upstream as a complete
// form. More than MaxFileSize bytes of file abort the upload with
// ErrFileTooLarge. ctx bounds the whole upload. It returns the "payload"
// object of a 2xx answer ({"url": ...}); an error answer
// {"error":{type,message}} becomes *AuthError (type "authentication") or
// *RequestError{Action: "send_file"}; an error of form is returned
// wrapped.
//
// SendFileForm returns once form has ended or the upload is cut off; a
// Read or NextPart of form that never returns keeps it waiting. It does
// not use the socket, so it works while the socket is down, but not after
// Close (ErrClosed).
func (c *Client) SendFileForm(ctx context.Context, chatID string, form FileForm) (json.RawMessage, error) {
	if errors.Is(c.currentCause(), ErrClosed) {
		return nil, ErrClosed
	}
	return sendFileForm(ctx, c.cfg, c.uploadURL, chatID, form, c.log)
}

// UploadFile is SendFileForm without a client: the upload of cfg.Token
// (and cfg's URL, License, HTTPClient and Logger) from a process that
// holds no socket for the customer (a cluster replica that does not own
// the customer's session: the upload needs only the token).
func UploadFile(ctx context.Context, cfg Config, chatID string, form FileForm) (json.RawMessage, error) {
	cfg = cfg.withDefaults()
	_, uploadURL, err := endpoints(cfg.URL, cfg.License)
	if err != nil {
		return nil, err
	}
	log := func(lvl zapcore.Level, msg string, fields ...zap.Field) {
		if ce := cfg.Logger.Check(lvl, msg); ce != nil {
			ce.Write(append(fields, zap.Int64("license_id", cfg.License))...)
		}
	}
	return sendFileForm(ctx, cfg, uploadURL, chatID, form, log)
}

// sendFileForm is the upload of SendFileForm and UploadFile; cfg has its
// defaults.
func sendFileForm(ctx context.Context, cfg Config, uploadURL, chatID string, form FileForm, log func(zapcore.Level, string, ...zap.Field)) (json.RawMessage, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uploadURL, pr)
	if err != nil {
		return nil, fmt.Errorf("chatio: send_file: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	req.Header.Set("Accept", "application/json")

	werr := make(chan error, 1)
	go func() { // owned by this call: waited for below
		err := writeFileForm(mw, chatID, form)
		pw.CloseWithError(err) // nil: the body ends normally
		werr <- err
	}()

	var (
		status int
		answer []byte
	)
	resp, err := cfg.HTTPClient.Do(req)
	if err == nil {
		status = resp.StatusCode
		answer, err = io.ReadAll(io.LimitReader(resp.Body, maxFileAnswer))
		_ = resp.Body.Close()
	}
	pr.CloseWithError(errUploadEnded) // unblocks the writer if the server answered early
	formErr := <-werr

	if errors.Is(formErr, ErrFileTooLarge) {
		return nil, ErrFileTooLarge
	}
	if formErr != nil && !errors.Is(formErr, errUploadEnded) && !errors.Is(formErr, io.ErrClosedPipe) {
		// The form failed: whatever the upstream made of the cut body, the
		// upload did not happen.
		if ctx.Err() != nil {
			return nil, ctxError(ctx, "send_file")
		}
		return nil, fmt.Errorf("chatio: send_file: reading the form: %w", formErr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx, "send_file")
		}
		return nil, fmt.Errorf("chatio: send_file: %w", err)
	}
	log(zapcore.DebugLevel, "send_file answered", zap.Int("status", status))
	return fileAnswer(status, answer)
}

// writeFileForm writes the multipart body: chat_id, then form's parts as
// they come, the file streamed and counted; more than MaxFileSize →
// ErrFileTooLarge, without sending the byte too many. The closing boundary
// is written only when form ends well.
func writeFileForm(mw *multipart.Writer, chatID string, form FileForm) error {
	if err := mw.WriteField("payload.chat_id", chatID); err != nil {
		return err
	}
	var file, customID bool
	for {
		p, err := form.NextPart()
		if err == io.EOF { //nolint:errorlint // the end is io.EOF itself; a wrapped one is a failure
			break
		}
		if err != nil {
			return err
		}
		if p.File == nil {
			if customID {
				return errFormTwice
			}
			customID = true
			if p.CustomID != "" {
				if err := mw.WriteField("payload.custom_id", p.CustomID); err != nil {
					return err
				}
			}
			continue
		}
		if file {
			return errFormTwice
		}
		file = true
		if err := writeFilePart(mw, p); err != nil {
			return err
		}
	}
	if !file {
		return errFormNoFile
	}
	return mw.Close()
}

// writeFilePart streams the file part; more than MaxFileSize bytes →
// ErrFileTooLarge.
func writeFilePart(mw *multipart.Writer, p FilePart) error {
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", multipart.FileContentDisposition("payload.file", headerSafe(p.Filename)))
	h.Set("Content-Type", safeContentType(p.ContentType))
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	// The file ends with io.EOF itself: an error that wraps it (a
	// multipart reader's "NextPart: EOF") is a failure.
	_, err = io.CopyN(part, p.File, MaxFileSize)
	switch {
	case err == nil: // MaxFileSize bytes sent: one more byte is one too many
		var probe [1]byte
		k, err := p.File.Read(probe[:])
		for k == 0 && err == nil {
			k, err = p.File.Read(probe[:])
		}
		if k > 0 {
			return ErrFileTooLarge
		}
		if err != io.EOF { //nolint:errorlint // see above
			return err
		}
	case err != io.EOF: //nolint:errorlint // see above
		return err
	}
	return nil
}

// headerSafe drops line breaks so a file name cannot add header lines.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return -1
		}
		return r
	}, s)
}

// safeContentType is contentType normalised, or application/octet-stream
// when it is empty or not a media type.
func safeContentType(contentType string) string {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "application/octet-stream"
	}
	if s := mime.FormatMediaType(mt, params); s != "" {
		return s
	}
	return "application/octet-stream"
}

// fileAnswer interprets the upload's HTTP answer.
func fileAnswer(status int, body []byte) (json.RawMessage, error) {
	if status >= 200 && status < 300 {
		var ok struct {
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(body, &ok); err != nil || len(ok.Payload) == 0 || string(ok.Payload) == "null" {
			return nil, fmt.Errorf("chatio: send_file: HTTP %d without a payload", status)
		}
		return ok.Payload, nil
	}
	if status == http.StatusRequestEntityTooLarge {
		return nil, ErrFileTooLarge
	}
	var ep ErrorPayload
	if json.Unmarshal(body, &ep) == nil && ep.Error.Type != "" {
		if ep.Error.Type == ErrTypeAuthentication {
			return nil, &AuthError{Message: ep.Error.Message}
		}
		return nil, &RequestError{Action: "send_file", Type: ep.Error.Type, Message: ep.Error.Message}
	}
	return nil, fmt.Errorf("chatio: send_file: HTTP %d", status)
}
