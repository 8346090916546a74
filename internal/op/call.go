package op

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Call is one SDK call: the method's Args, which name it. Its JSON is
// {"method": name, "args": {...}}, and decoding it gives back an equal
// Call (its Args of the same type, with equal values).
type Call struct {
	Args Args
}

// Method is the call's method name ("" without Args).
func (c Call) Method() string {
	if c.Args == nil {
		return ""
	}
	return c.Args.Method()
}

// Validate is the Args' Validate; a Call without Args is refused.
func (c Call) Validate() error {
	if c.Args == nil {
		return argError("no method")
	}
	return c.Args.Validate()
}

// callJSON is Call's JSON form.
type callJSON struct {
	Method string          `json:"method"`
	Args   json.RawMessage `json:"args"`
}

// MarshalJSON writes {"method": name, "args": {...}}.
func (c Call) MarshalJSON() ([]byte, error) {
	if c.Args == nil {
		return nil, errors.New("op: a Call without Args")
	}
	args, err := json.Marshal(c.Args)
	if err != nil {
		return nil, err
	}
	return json.Marshal(callJSON{Method: c.Args.Method(), Args: args})
}

// UnmarshalJSON reads what MarshalJSON writes. An unknown method, or
// args with a member its type does not have, is an error: a Call is
// never taken for another.
func (c *Call) UnmarshalJSON(b []byte) error {
	var j callJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	dec, ok := decoders[j.Method]
	if !ok {
		return fmt.Errorf("op: unknown method %q", j.Method)
	}
	a, err := dec(j.Args)
	if err != nil {
		return fmt.Errorf("op: %s: %w", j.Method, err)
	}
	c.Args = a
	return nil
}

// decoders: one per method a Call can carry.
var decoders = map[string]func(json.RawMessage) (Args, error){
	MethodStartChat:                  decode[StartChat],
	MethodGetChatsSummary:            decode[GetChatsSummary],
	MethodGetChatThreads:             decode[GetChatThreads],
	MethodGetChatThreadsSummary:      decode[GetChatThreadsSummary],
	MethodGetChatHistory:             decode[GetChatHistory],
	MethodSendEvent:                  decode[SendEvent],
	MethodSendRating:                 decode[SendRating],
	MethodSetSneakPeek:               decode[SetSneakPeek],
	MethodCloseThread:                decode[CloseThread],
	MethodUpdateChatProperties:       decode[UpdateChatProperties],
	MethodUpdateChatThreadProperties: decode[UpdateChatThreadProperties],
	MethodUpdateCustomer:             decode[UpdateCustomer],
	MethodUpdateLastSeenTimestamp:    decode[UpdateLastSeenTimestamp],
	MethodDisconnect:                 decode[Disconnect],
}

func decode[T Args](raw json.RawMessage) (Args, error) {
	var a T
	if len(raw) > 0 {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&a); err != nil {
			return nil, err
		}
		if d.More() {
			return nil, errors.New("trailing data after args")
		}
	}
	return a, nil
}

// Methods is the name of every method a Call can carry, sorted.
func Methods() []string {
	return slices.Sorted(maps.Keys(decoders))
}
