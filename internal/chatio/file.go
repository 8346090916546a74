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

// SendFile uploads one file for chatID over HTTP: POST {http(s) form of
// URL}/action/send_file?license_id=N with "Authorization: Bearer <token>" and
// a multipart/form-data body (payload.chat_id, payload.file, payload.custom_id
// when non-empty) built on the fly from r, never held in memory. More than
// MaxFileSize bytes from r abort the upload with ErrFileTooLarge. ctx bounds
// the whole upload. It returns the "payload" object of a 2xx answer
// ({"url": ...}); an error answer {"error":{type,message}} becomes *AuthError
// (type "authentication") or *RequestError{Action: "send_file"}.
//
// SendFile returns once r is read to its end or the upload is cut off; a
// Read on r that never returns keeps it waiting. It does not use the socket,
// so it works while the socket is down, but not after Close (ErrClosed).
func (c *Client) SendFile(ctx context.Context, chatID, customID, filename, contentType string, r io.Reader) (json.RawMessage, error) {
	if errors.Is(c.currentCause(), ErrClosed) {
		return nil, ErrClosed
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.uploadURL, pr)
	if err != nil {
		return nil, fmt.Errorf("chatio: send_file: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Accept", "application/json")

	werr := make(chan error, 1)
	go func() { // owned by this call: waited for below
		err := writeFileForm(mw, chatID, customID, filename, contentType, r)
		pw.CloseWithError(err) // nil: the body ends normally
		werr <- err
	}()

	var (
		status int
		answer []byte
	)
	resp, err := c.cfg.HTTPClient.Do(req)
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
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx, "send_file")
		}
		if formErr != nil && !errors.Is(formErr, errUploadEnded) && !errors.Is(formErr, io.ErrClosedPipe) {
			return nil, fmt.Errorf("chatio: send_file: reading the file: %w", formErr)
		}
		return nil, fmt.Errorf("chatio: send_file: %w", err)
	}
	c.log(zapcore.DebugLevel, "send_file answered", zap.Int("status", status))
	return fileAnswer(status, answer)
}

// writeFileForm writes the multipart body, streaming the file part from r
// and counting its bytes; more than MaxFileSize → ErrFileTooLarge, without
// sending the byte too many.
func writeFileForm(mw *multipart.Writer, chatID, customID, filename, contentType string, r io.Reader) error {
	if err := mw.WriteField("payload.chat_id", chatID); err != nil {
		return err
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", multipart.FileContentDisposition("payload.file", headerSafe(filename)))
	h.Set("Content-Type", safeContentType(contentType))
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = io.CopyN(part, r, MaxFileSize)
	switch {
	case err == nil: // MaxFileSize bytes sent: one more byte is one too many
		var probe [1]byte
		k, err := io.ReadFull(r, probe[:])
		if k > 0 {
			return ErrFileTooLarge
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
	case !errors.Is(err, io.EOF):
		return err
	}
	if customID != "" {
		if err := mw.WriteField("payload.custom_id", customID); err != nil {
			return err
		}
	}
	return mw.Close()
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
