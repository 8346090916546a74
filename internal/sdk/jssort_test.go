package sdk

import (
	"encoding/json"
	"math/rand"
	"sort"
	"strings"
	"testing"
)

// The sorts must be V8's own, comparison for comparison: with an order
// that is NaN (absent, non-numeric), the comparator is inconsistent and
// the result depends on the algorithm. The expected permutations below were
// produced by node 20 (`[].concat(a).sort(cmp).map(o => o.i)`) with the
// same inputs.
func TestSDKSortMatchesV8(t *testing.T) {
	type el struct {
		i int
		k json.RawMessage
	}
	// 100 elements, keys from an LCG (exact in float64 too), every 7th
	// (i % 7 == 3) undefined.
	seed := 42
	a := make([]el, 100)
	for i := range a {
		seed = (seed * 16807) % 2147483647
		a[i] = el{i: i, k: json.RawMessage(itoa(seed % 50))}
		if i%7 == 3 {
			a[i].k = nil
		}
	}
	jsSort(a, func(x, y el) float64 { return jsToNumber(x.k) - jsToNumber(y.k) })
	checkPerm(t, "NaN keys", a, func(e el) int { return e.i },
		"8,22,5,6,37,44,25,46,43,27,29,2,7,14,19,34,23,12,13,26,33,16,1,35,4,39,0,3,9,10,28,20,18,48,21,47,32,30,15,11,17,24,31,40,36,38,42,41,45,71,86,54,91,92,72,93,97,76,81,64,88,56,77,82,85,62,84,90,96,58,83,89,95,70,98,53,60,61,51,65,50,52,57,68,78,79,67,75,74,55,59,69,63,49,66,73,80,87,94,99")

	// 200 elements and a comparator that is no order at all (runs, merges
	// and galloping all see it).
	b := make([]int, 200)
	for i := range b {
		b[i] = i
	}
	jsSort(b, func(x, y int) float64 { return float64((x*31+y*17)%7 - 3) })
	checkPerm(t, "arbitrary comparator", b, func(i int) int { return i },
		"178,53,3,5,0,25,15,13,33,38,52,61,54,40,95,85,83,81,71,185,23,102,105,107,114,116,121,128,130,133,137,142,146,144,69,101,67,103,93,123,111,135,149,8,45,57,59,64,78,89,99,106,2,51,55,27,11,119,151,6,161,75,108,113,115,120,127,129,49,134,100,47,118,122,141,148,139,132,125,143,42,35,58,109,104,62,159,154,147,145,140,138,131,126,124,117,136,79,112,31,73,110,169,176,183,4,9,60,156,163,1,50,150,152,98,96,28,21,30,37,84,70,72,77,195,193,188,181,174,167,160,158,165,191,155,86,153,196,189,182,91,184,17,66,68,80,82,26,19,87,94,171,14,16,32,39,173,44,168,63,56,10,12,7,170,172,97,92,157,162,175,197,65,177,186,90,48,164,166,199,46,88,179,41,34,22,29,20,24,76,198,36,43,187,180,190,192,18,74,194")
}

// For a consistent comparator every stable sort agrees: jsSort must equal
// sort.SliceStable on inputs shaped to exercise runs, merges and galloping.
func TestSDKSortStable(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	type el struct{ k, i int }
	for round := 0; round < 300; round++ {
		n := rng.Intn(2000)
		xs := make([]el, n)
		for i := range xs {
			switch round % 4 {
			case 0:
				xs[i].k = rng.Intn(10)
			case 1:
				xs[i].k = i + rng.Intn(3) // nearly ascending
			case 2:
				xs[i].k = n - i - rng.Intn(3) // nearly descending
			default: // two interleaving ascending halves: long gallops
				if i < n/2 {
					xs[i].k = 2 * i
				} else {
					xs[i].k = 2*(i-n/2) + 1
				}
			}
			xs[i].i = i
		}
		want := append([]el(nil), xs...)
		sort.SliceStable(want, func(a, b int) bool { return want[a].k < want[b].k })
		jsSort(xs, func(a, b el) float64 { return float64(a.k - b.k) })
		for i := range xs {
			if xs[i] != want[i] {
				t.Fatalf("round %d (n %d): differs at %d", round, n, i)
			}
		}
	}
}

func checkPerm[T any](t *testing.T, what string, xs []T, idx func(T) int, want string) {
	t.Helper()
	got := make([]string, len(xs))
	for i, x := range xs {
		got[i] = itoa(idx(x))
	}
	if g := strings.Join(got, ","); g != want {
		t.Errorf("%s:\n got  %s\n want %s", what, g, want)
	}
}

func itoa(i int) string { return string(mustJSONNumber(i)) }

func mustJSONNumber(i int) []byte {
	b, _ := json.Marshal(i)
	return b
}
