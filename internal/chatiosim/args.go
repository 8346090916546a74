package chatiosim

import (
	"bytes"
	"encoding/json"
	"math"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// apiErr is an error answer: {"error": {type, message}}.
type apiErr struct {
	typ string
	msg string
}

func (e *apiErr) Error() string { return e.typ + ": " + e.msg }

func validation(msg string) *apiErr { return &apiErr{chatio.ErrTypeValidation, msg} }
func notFound(msg string) *apiErr   { return &apiErr{chatio.ErrTypeNotFound, msg} }

// args is a request payload, key by key.
type args map[string]json.RawMessage

func parseArgs(p json.RawMessage) (args, *apiErr) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || string(p) == "null" {
		return args{}, nil
	}
	if p[0] != '{' {
		return nil, validation("payload must be an object")
	}
	var a args
	if err := json.Unmarshal(p, &a); err != nil {
		return nil, validation("payload must be an object")
	}
	return a, nil
}

// present reports whether key is there and not null.
func (a args) present(key string) bool {
	v, ok := a[key]
	return ok && string(bytes.TrimSpace(v)) != "null"
}

// str returns a required, non-empty string.
func (a args) str(key string) (string, *apiErr) {
	if !a.present(key) {
		return "", validation(key + " is required")
	}
	s, e := a.optStr(key)
	if e != nil {
		return "", e
	}
	if s == "" {
		return "", validation(key + " must not be empty")
	}
	return s, nil
}

// optStr returns an optional string ("" when absent).
func (a args) optStr(key string) (string, *apiErr) {
	if !a.present(key) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(a[key], &s); err != nil {
		return "", validation(key + " must be a string")
	}
	return s, nil
}

// optInt returns an optional integer within [lo, hi] (def when absent).
func (a args) optInt(key string, def, lo, hi int, tooHigh string) (int, *apiErr) {
	if !a.present(key) {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(a[key], &f); err != nil || f != math.Trunc(f) {
		return 0, validation(key + " must be an integer")
	}
	if f < float64(lo) {
		return 0, validation(key + " is too low")
	}
	if f > float64(hi) {
		if tooHigh != "" {
			return 0, validation(tooHigh)
		}
		return 0, validation(key + " is too high")
	}
	return int(f), nil
}

// obj returns a required JSON object.
func (a args) obj(key string) (map[string]json.RawMessage, *apiErr) {
	if !a.present(key) {
		return nil, validation(key + " is required")
	}
	return a.optObj(key)
}

// optObj returns an optional JSON object (nil when absent).
func (a args) optObj(key string) (map[string]json.RawMessage, *apiErr) {
	if !a.present(key) {
		return nil, nil
	}
	if !isObject(a[key]) {
		return nil, validation(key + " must be an object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(a[key], &m); err != nil {
		return nil, validation(key + " must be an object")
	}
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	return m, nil
}

// customerData validates {name?, email?, fields?} (fields: string values).
type customerData struct {
	name, email      string
	hasName, hasMail bool
	fields           map[string]json.RawMessage
}

func parseCustomerData(m map[string]json.RawMessage) (customerData, *apiErr) {
	a := args(m)
	var d customerData
	var e *apiErr
	if d.name, e = a.optStr("name"); e != nil {
		return d, validation("customer.name must be a string")
	}
	d.hasName = a.present("name")
	if d.email, e = a.optStr("email"); e != nil {
		return d, validation("customer.email must be a string")
	}
	d.hasMail = a.present("email")
	if d.fields, e = a.optObj("fields"); e != nil {
		return d, validation("customer.fields must be an object")
	}
	for k, v := range d.fields {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return d, validation("customer.fields." + k + " must be a string")
		}
	}
	return d, nil
}

func (c *customer) apply(d customerData) {
	if d.hasName {
		c.name = d.name
	}
	if d.hasMail {
		c.email = d.email
	}
	for k, v := range d.fields {
		c.fields[k] = cloneRaw(v)
	}
}

// reserved event fields the server sets itself.
var reservedEventFields = []string{"id", "author_id", "timestamp", "order"}

// parseEvent validates a client event: message {type, text, custom_id?},
// file {type, url, content_type?, ...}, or any other type passed as given.
func parseEvent(raw json.RawMessage) (eventSpec, *apiErr) {
	var sp eventSpec
	if !isObject(raw) {
		return sp, validation("event must be an object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return sp, validation("event must be an object")
	}
	a := args(m)
	typ, e := a.str("type")
	if e != nil {
		return sp, validation("event.type must be a non-empty string")
	}
	sp.typ = typ
	if a.present("custom_id") {
		cid, e := a.optStr("custom_id")
		if e != nil {
			return sp, validation("event.custom_id must be a string")
		}
		sp.customID = &cid
	}
	switch typ {
	case "message":
		if !a.present("text") {
			return sp, validation("event.text is required")
		}
		text, e := a.optStr("text")
		if e != nil {
			return sp, validation("event.text must be a string")
		}
		if len(bytes.TrimSpace([]byte(text))) == 0 {
			return sp, validation("event.text must not be empty")
		}
		sp.text = text
		return sp, nil
	case "file":
		url, e := a.str("url")
		if e != nil {
			return sp, validation("event.url must be a non-empty string")
		}
		ct, e := a.optStr("content_type")
		if e != nil {
			return sp, validation("event.content_type must be a string")
		}
		sp.url, sp.ctype = url, ct
	}
	for _, k := range reservedEventFields {
		delete(m, k)
	}
	sp.fields = m
	return sp, nil
}

// parseProperties validates a properties object: {namespace: {...}}.
func parseProperties(a args, key string, required bool) (map[string]json.RawMessage, *apiErr) {
	var m map[string]json.RawMessage
	var e *apiErr
	if required {
		m, e = a.obj(key)
	} else {
		m, e = a.optObj(key)
	}
	if e != nil {
		return nil, e
	}
	for ns, v := range m {
		if !isObject(v) {
			return nil, validation(key + "." + ns + " must be an object")
		}
	}
	return m, nil
}
