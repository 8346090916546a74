package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// JavaScript's value semantics on raw JSON values, as the SDK's code
// applies them to what JSON.parse made of the wire: truthiness, String(v),
// ToNumber, ===, and parseServerTimestamp. A nil json.RawMessage is
// undefined (an absent member).

func isNull(r json.RawMessage) bool { return string(bytes.TrimSpace(r)) == "null" }

// isNumber is `typeof v === 'number'`.
func isNumber(r json.RawMessage) bool {
	if len(r) == 0 {
		return false
	}
	c := r[0]
	return c == '-' || (c >= '0' && c <= '9')
}

// number returns the value of a raw JSON number; ok is false for anything
// else. A literal beyond float64's range is ±Inf (JSON.parse("1e400") is
// Infinity), one below it 0.
func number(r json.RawMessage) (float64, bool) {
	if !isNumber(r) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(r), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
}

// truthy is JavaScript's truthiness of a JSON value (undefined is falsy).
func truthy(r json.RawMessage) bool {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return false
	}
	switch string(r) {
	case "null", "false", `""`:
		return false
	}
	if f, ok := number(r); ok {
		return f != 0
	}
	return true
}

// jsString is String(v) of a raw JSON value, as JavaScript makes property
// keys of it (keyBy, obj[type]): a string's value, a number in JavaScript's
// shortest form, "true", "false", "null", "undefined" when absent, an
// array's elements joined by "," (null as ""), "[object Object]".
func jsString(r json.RawMessage) string {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return "undefined"
	}
	switch r[0] {
	case '"':
		var s string
		if json.Unmarshal(r, &s) == nil {
			return s
		}
	case '{':
		return "[object Object]"
	case '[':
		elems, err := jsonobj.ParseArray(r)
		if err != nil {
			break
		}
		parts := make([]string, len(elems))
		for i, e := range elems {
			if !isNull(e) {
				parts[i] = jsString(e)
			}
		}
		return strings.Join(parts, ",")
	default:
		if f, ok := number(r); ok {
			return jsNumberString(f)
		}
	}
	return string(r)
}

// jsNumberString is Number.prototype.toString(): encoding/json writes
// floats in ECMAScript's shortest form; -0 prints as 0.
func jsNumberString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// jsStrictEqual is a === b for two raw JSON values (absent is undefined):
// strings and numbers by value, objects and arrays never (two parsed
// objects are distinct).
func jsStrictEqual(a, b json.RawMessage) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	switch {
	case a[0] == '{' || a[0] == '[' || b[0] == '{' || b[0] == '[':
		return false
	case a[0] == '"' && b[0] == '"':
		return jsString(a) == jsString(b)
	case isNumber(a) && isNumber(b):
		fa, okA := number(a)
		fb, okB := number(b)
		return okA && okB && fa == fb
	}
	return string(a) == string(b)
}

// jsToNumber is JavaScript's ToNumber of a raw JSON value, as the SDK's
// numeric sorts apply it (a.order - b.order): absent (undefined) and
// objects are NaN, null and false 0, true 1, strings by StringToNumber,
// arrays through their join.
func jsToNumber(r json.RawMessage) float64 {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return math.NaN()
	}
	switch r[0] {
	case 'n', 'f':
		return 0
	case 't':
		return 1
	case '{':
		return math.NaN()
	case '"', '[':
		return jsStringToNumber(jsString(r))
	}
	if f, ok := number(r); ok {
		return f
	}
	return math.NaN()
}

// jsStringToNumber is ECMAScript's StringToNumber: surrounding white space
// and line terminators ignored, "" is 0, a decimal literal with optional
// sign (or ±Infinity), or an unsigned 0x/0o/0b integer; anything else NaN.
func jsStringToNumber(s string) float64 {
	s = strings.TrimFunc(s, func(r rune) bool {
		switch r {
		case '\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff':
			return true
		}
		return r >= '\u2000' && r <= '\u200a'
	})
	if s == "" {
		return 0
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			n, ok := new(big.Int).SetString(s[2:], base)
			if !ok || strings.ContainsAny(s[2:], "_+-") {
				return math.NaN()
			}
			f, _ := new(big.Float).SetInt(n).Float64()
			return f
		}
	}
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 {
		return math.NaN()
	}
	if body == "Infinity" {
		if s[0] == '-' {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	if !isDecimalLiteral(body) {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return math.NaN()
	}
	return f
}

// isDecimalLiteral: digits [. digits] [e[±]digits], or . digits [exponent],
// or digits . [exponent] (StrUnsignedDecimalLiteral without Infinity).
func isDecimalLiteral(s string) bool {
	digits := func(i int) int {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j
	}
	i := digits(0)
	intDigits := i
	frac := 0
	if i < len(s) && s[i] == '.' {
		j := digits(i + 1)
		frac = j - i - 1
		i = j
	}
	if intDigits == 0 && frac == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(s)
}

// msTimestamp is parseServerTimestamp: seconds × 1000 for a number, else
// null. JSON.stringify writes an infinite result as null and -0 as 0.
func msTimestamp(r json.RawMessage) json.RawMessage {
	f, ok := serverTimestamp(r)
	if !ok {
		return json.RawMessage("null")
	}
	if f == 0 {
		return json.RawMessage("0")
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		// What json.Marshal writes for such a float (its 'f' range), in
		// one call without the encoder.
		return strconv.AppendFloat(make([]byte, 0, 24), f, 'f', -1, 64)
	}
	b, err := json.Marshal(f) // same shortest form JavaScript prints
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// serverTimestamp is parseServerTimestamp's numeric value (possibly
// infinite); ok is false where it gives null.
func serverTimestamp(r json.RawMessage) (float64, bool) {
	f, ok := number(r)
	if !ok {
		return 0, false
	}
	return f * 1000, true
}

var (
	rawEmptyObject = json.RawMessage("{}")
	rawTrue        = json.RawMessage("true")
)
