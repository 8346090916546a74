package jsonobj

import (
	"errors"
	"unicode/utf8"
)

// Limits bound the shape of a JSON document that Check accepts.
// A zero field is no limit.
type Limits struct {
	// MaxDepth is how many objects and arrays may be open at once: {} and
	// [] are depth 1, {"a":{"b":[]}} depth 3, a scalar depth 0.
	MaxDepth int
	// MaxMembers is how many object members (key: value pairs) the whole
	// document may hold, at every depth together. Array elements do not
	// count.
	MaxMembers int
}

// Why Check refuses a document. Only the first problem in the
// document's byte order is reported.
var (
	ErrSyntax  = errors.New("not valid JSON")
	ErrUTF8    = errors.New("not valid UTF-8")
	ErrDepth   = errors.New("nested too deeply")
	ErrMembers = errors.New("too many object members")
)

// Check reports whether b is exactly one JSON value (surrounding white
// space allowed) of valid UTF-8 within lim, in one pass over b: time
// linear in len(b), memory in lim.MaxDepth (in len(b) without a depth
// limit; nothing allocated up to depth 64). It accepts what
// json.Valid(b) && utf8.Valid(b) accepts within json.Valid's own depth
// limit of 10,000 (FuzzCheck).
func Check(b []byte, lim Limits) error {
	_, err := check(b, lim)
	return err
}

// CheckCompact is Check that also reports, from the same pass, whether b
// is compact: no white space at all outside its strings, which is what
// json.Compact would leave unchanged. Every value inside a compact document
// Check accepts is itself valid, compact JSON of valid UTF-8: the scanner
// may cut it out (EachValidMember, ParseValidObject) and an encoder append
// it (Checked) without validating or compacting it again.
func CheckCompact(b []byte, lim Limits) (compact bool, err error) {
	spaced, err := check(b, lim)
	return err == nil && !spaced, err
}

// check is Check; spaced reports white space skipped outside strings.
func check(b []byte, lim Limits) (spaced bool, err error) {
	var small [64]byte
	stack := small[:0] // the open containers, '{' or '['
	members := 0
	i := skipSpaceNoting(b, 0, &spaced)
	for {
		// A value starts at b[i].
		if i == len(b) {
			return spaced, ErrSyntax
		}
		switch c := b[i]; c {
		case '{', '[':
			if lim.MaxDepth > 0 && len(stack) == lim.MaxDepth {
				return spaced, ErrDepth
			}
			i = skipSpaceNoting(b, i+1, &spaced)
			if i < len(b) && b[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				i++
				break // an empty container is a value
			}
			stack = append(stack, c)
			if c == '{' {
				if i, err = checkKey(b, i, &members, lim.MaxMembers, &spaced); err != nil {
					return spaced, err
				}
			}
			continue // its first value
		case '"':
			if i, err = checkString(b, i); err != nil {
				return spaced, err
			}
		case 't':
			i = checkLiteral(b, i, "true")
		case 'f':
			i = checkLiteral(b, i, "false")
		case 'n':
			i = checkLiteral(b, i, "null")
		default:
			i = checkNumber(b, i)
		}
		if i < 0 {
			return spaced, ErrSyntax
		}
		// After a value: a separator, closers, or the end.
		for {
			i = skipSpaceNoting(b, i, &spaced)
			if len(stack) == 0 {
				if i != len(b) {
					return spaced, ErrSyntax
				}
				return spaced, nil
			}
			if i == len(b) {
				return spaced, ErrSyntax
			}
			top := stack[len(stack)-1]
			if b[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return spaced, ErrSyntax
			}
			i = skipSpaceNoting(b, i+1, &spaced)
			if top == '{' {
				if i, err = checkKey(b, i, &members, lim.MaxMembers, &spaced); err != nil {
					return spaced, err
				}
			}
			break
		}
	}
}

// skipSpaceNoting is skipSpace, setting *spaced when it skips anything.
func skipSpaceNoting(b []byte, i int, spaced *bool) int {
	j := skipSpace(b, i)
	if j != i {
		*spaced = true
	}
	return j
}

// checkKey checks the member key at b[i] and its colon, counting the
// member; it returns the index of the member's value (white space
// skipped).
func checkKey(b []byte, i int, members *int, max int, spaced *bool) (int, error) {
	if i == len(b) || b[i] != '"' {
		return 0, ErrSyntax
	}
	*members++
	if max > 0 && *members > max {
		return 0, ErrMembers
	}
	i, err := checkString(b, i)
	if err != nil {
		return 0, err
	}
	i = skipSpaceNoting(b, i, spaced)
	if i == len(b) || b[i] != ':' {
		return 0, ErrSyntax
	}
	return skipSpaceNoting(b, i+1, spaced), nil
}

// checkString checks the JSON string starting at b[i] == '"' and returns
// the index after it.
func checkString(b []byte, i int) (int, error) {
	for i++; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 == len(b) {
				return 0, ErrSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, ErrSyntax
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, ErrSyntax
					}
				}
				i += 6
			default:
				return 0, ErrSyntax
			}
		case c < 0x20:
			return 0, ErrSyntax
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return 0, ErrUTF8
			}
			i += n
		}
	}
	return 0, ErrSyntax
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// checkLiteral returns the index after lit at b[i], or -1.
func checkLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// checkNumber returns the index after the JSON number at b[i], or -1:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func checkNumber(b []byte, i int) int {
	digits := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(i + 1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}
