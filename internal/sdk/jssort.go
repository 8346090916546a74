package sdk

// This file is a port of V8's Array.prototype.sort, which the SDK's sorts
// run on: the order of elements its comparators call equal, or cannot
// order at all, is V8's.

// jsSort sorts xs in place as V8's Array.prototype.sort (the TimSort of
// third_party/v8/builtins/array-sort.tq, Node ≥ 11) does with comparefn
// cmp, step for step, so that the result is the SDK's even when cmp is not
// a consistent order (a NaN result counts as 0, "equal": an event without a
// numeric order compares equal to every other one).
func jsSort[T any](xs []T, cmp func(a, b T) float64) {
	if len(xs) < 2 {
		return
	}
	s := &timSort[T]{a: xs, cmp: cmp, minGallop: minGallopWins}
	s.sort()
}

const minGallopWins = 7

type timSort[T any] struct {
	a         []T
	cmp       func(a, b T) float64
	minGallop int
	runs      []run
}

type run struct{ base, n int }

// less is Compare(x, y) < 0; NaN is not below 0.
func (s *timSort[T]) less(x, y T) bool { return s.cmp(x, y) < 0 }

func (s *timSort[T]) sort() {
	low, remaining := 0, len(s.a)
	minRun := minRunLength(remaining)
	for remaining != 0 {
		n := s.countAndMakeRun(low, low+remaining)
		if n < minRun {
			forced := min(minRun, remaining)
			s.binaryInsertionSort(low, low+n, low+forced)
			n = forced
		}
		s.runs = append(s.runs, run{low, n})
		s.mergeCollapse()
		low += n
		remaining -= n
	}
	s.mergeForceCollapse()
}

func minRunLength(n int) int {
	r := 0
	for n >= 64 {
		r |= n & 1
		n >>= 1
	}
	return n + r
}

// countAndMakeRun returns the length of the run starting at low: ascending
// (a[i] >= a[i-1]) or strictly descending, which it reverses.
func (s *timSort[T]) countAndMakeRun(low, high int) int {
	if low+1 == high {
		return 1
	}
	n := 2
	descending := s.less(s.a[low+1], s.a[low])
	prev := s.a[low+1]
	for i := low + 2; i < high; i++ {
		if s.less(s.a[i], prev) != descending {
			break
		}
		prev = s.a[i]
		n++
	}
	if descending {
		for i, j := low, low+n-1; i < j; i, j = i+1, j-1 {
			s.a[i], s.a[j] = s.a[j], s.a[i]
		}
	}
	return n
}

// binaryInsertionSort sorts a[low:high], of which a[low:start] is sorted.
func (s *timSort[T]) binaryInsertionSort(low, start, high int) {
	if low == start {
		start++
	}
	for ; start < high; start++ {
		left, right := low, start
		pivot := s.a[start]
		for left < right {
			mid := left + (right-left)>>1
			if s.less(pivot, s.a[mid]) {
				right = mid
			} else {
				left = mid + 1
			}
		}
		copy(s.a[left+1:start+1], s.a[left:start])
		s.a[left] = pivot
	}
}

func (s *timSort[T]) invariantHolds(n int) bool {
	if n < 2 {
		return true
	}
	return s.runs[n-2].n > s.runs[n-1].n+s.runs[n].n
}

func (s *timSort[T]) mergeCollapse() {
	for len(s.runs) > 1 {
		n := len(s.runs) - 2
		if !s.invariantHolds(n+1) || !s.invariantHolds(n) {
			if s.runs[n-1].n < s.runs[n+1].n {
				n--
			}
			s.mergeAt(n)
		} else if s.runs[n].n <= s.runs[n+1].n {
			s.mergeAt(n)
		} else {
			break
		}
	}
}

func (s *timSort[T]) mergeForceCollapse() {
	for len(s.runs) > 1 {
		n := len(s.runs) - 2
		if n > 0 && s.runs[n-1].n < s.runs[n+1].n {
			n--
		}
		s.mergeAt(n)
	}
}

func (s *timSort[T]) mergeAt(i int) {
	baseA, lenA := s.runs[i].base, s.runs[i].n
	baseB, lenB := s.runs[i+1].base, s.runs[i+1].n
	s.runs[i].n = lenA + lenB
	s.runs = append(s.runs[:i+1], s.runs[i+2:]...)

	k := s.gallopRight(s.a, s.a[baseB], baseA, lenA, 0)
	baseA += k
	lenA -= k
	if lenA == 0 {
		return
	}
	lenB = s.gallopLeft(s.a, s.a[baseA+lenA-1], baseB, lenB, lenB-1)
	if lenB == 0 {
		return
	}
	if lenA <= lenB {
		s.mergeLow(baseA, lenA, baseB, lenB)
	} else {
		s.mergeHigh(baseA, lenA, baseB, lenB)
	}
}

// gallopLeft returns k such that a[base+k-1] < key <= a[base+k], searching
// from hint.
func (s *timSort[T]) gallopLeft(a []T, key T, base, n, hint int) int {
	lastOfs, ofs := 0, 1
	if s.less(a[base+hint], key) {
		maxOfs := n - hint
		for ofs < maxOfs {
			if !s.less(a[base+hint+ofs], key) {
				break
			}
			lastOfs = ofs
			ofs = ofs<<1 + 1
		}
		ofs = min(ofs, maxOfs)
		lastOfs += hint
		ofs += hint
	} else {
		maxOfs := hint + 1
		for ofs < maxOfs {
			if s.less(a[base+hint-ofs], key) {
				break
			}
			lastOfs = ofs
			ofs = ofs<<1 + 1
		}
		ofs = min(ofs, maxOfs)
		lastOfs, ofs = hint-ofs, hint-lastOfs
	}
	lastOfs++
	for lastOfs < ofs {
		m := lastOfs + (ofs-lastOfs)>>1
		if s.less(a[base+m], key) {
			lastOfs = m + 1
		} else {
			ofs = m
		}
	}
	return ofs
}

// gallopRight returns k such that a[base+k-1] <= key < a[base+k],
// searching from hint.
func (s *timSort[T]) gallopRight(a []T, key T, base, n, hint int) int {
	lastOfs, ofs := 0, 1
	if s.less(key, a[base+hint]) {
		maxOfs := hint + 1
		for ofs < maxOfs {
			if !s.less(key, a[base+hint-ofs]) {
				break
			}
			lastOfs = ofs
			ofs = ofs<<1 + 1
		}
		ofs = min(ofs, maxOfs)
		lastOfs, ofs = hint-ofs, hint-lastOfs
	} else {
		maxOfs := n - hint
		for ofs < maxOfs {
			if s.less(key, a[base+hint+ofs]) {
				break
			}
			lastOfs = ofs
			ofs = ofs<<1 + 1
		}
		ofs = min(ofs, maxOfs)
		lastOfs += hint
		ofs += hint
	}
	lastOfs++
	for lastOfs < ofs {
		m := lastOfs + (ofs-lastOfs)>>1
		if s.less(key, a[base+m]) {
			ofs = m
		} else {
			lastOfs = m + 1
		}
	}
	return ofs
}

// mergeLow merges the adjacent runs a[baseA:baseA+lenA] and
// a[baseB:baseB+lenB] (lenA <= lenB) from the left.
func (s *timSort[T]) mergeLow(baseA, lenA, baseB, lenB int) {
	a := s.a
	tmp := append([]T(nil), a[baseA:baseA+lenA]...)
	dest, cursorTmp, cursorB := baseA, 0, baseB
	a[dest] = a[cursorB]
	dest++
	cursorB++
	lenB--

	copyB := func() { // the last element of A goes after what is left of B
		copy(a[dest:dest+lenB], a[cursorB:cursorB+lenB])
		a[dest+lenB] = tmp[cursorTmp]
	}
	succeed := func() {
		if lenA > 0 {
			copy(a[dest:dest+lenA], tmp[cursorTmp:cursorTmp+lenA])
		}
	}
	if lenB == 0 {
		succeed()
		return
	}
	if lenA == 1 {
		copyB()
		return
	}
	minGallop := s.minGallop
	for {
		winsA, winsB := 0, 0
		for {
			if s.less(a[cursorB], tmp[cursorTmp]) {
				a[dest] = a[cursorB]
				dest++
				cursorB++
				winsB++
				lenB--
				winsA = 0
				if lenB == 0 {
					succeed()
					return
				}
				if winsB >= minGallop {
					break
				}
			} else {
				a[dest] = tmp[cursorTmp]
				dest++
				cursorTmp++
				winsA++
				lenA--
				winsB = 0
				if lenA == 1 {
					copyB()
					return
				}
				if winsA >= minGallop {
					break
				}
			}
		}
		minGallop++
		for first := true; first || winsA >= minGallopWins || winsB >= minGallopWins; first = false {
			minGallop = max(1, minGallop-1)
			s.minGallop = minGallop

			winsA = s.gallopRight(tmp, a[cursorB], cursorTmp, lenA, 0)
			if winsA > 0 {
				copy(a[dest:dest+winsA], tmp[cursorTmp:cursorTmp+winsA])
				dest += winsA
				cursorTmp += winsA
				lenA -= winsA
				if lenA == 1 {
					copyB()
					return
				}
				if lenA == 0 { // an inconsistent comparefn
					succeed()
					return
				}
			}
			a[dest] = a[cursorB]
			dest++
			cursorB++
			lenB--
			if lenB == 0 {
				succeed()
				return
			}

			winsB = s.gallopLeft(a, tmp[cursorTmp], cursorB, lenB, 0)
			if winsB > 0 {
				copy(a[dest:dest+winsB], a[cursorB:cursorB+winsB])
				dest += winsB
				cursorB += winsB
				lenB -= winsB
				if lenB == 0 {
					succeed()
					return
				}
			}
			a[dest] = tmp[cursorTmp]
			dest++
			cursorTmp++
			lenA--
			if lenA == 1 {
				copyB()
				return
			}
		}
		minGallop++
		s.minGallop = minGallop
	}
}

// mergeHigh merges the adjacent runs a[baseA:baseA+lenA] and
// a[baseB:baseB+lenB] (lenA > lenB) from the right.
func (s *timSort[T]) mergeHigh(baseA, lenA, baseB, lenB int) {
	a := s.a
	tmp := append([]T(nil), a[baseB:baseB+lenB]...)
	dest, cursorTmp, cursorA := baseB+lenB-1, lenB-1, baseA+lenA-1
	a[dest] = a[cursorA]
	dest--
	cursorA--
	lenA--

	copyA := func() { // the first element of B goes before what is left of A
		dest -= lenA
		cursorA -= lenA
		copy(a[dest+1:dest+1+lenA], a[cursorA+1:cursorA+1+lenA])
		a[dest] = tmp[cursorTmp]
	}
	succeed := func() {
		if lenB > 0 {
			copy(a[dest-(lenB-1):dest+1], tmp[:lenB])
		}
	}
	if lenA == 0 {
		succeed()
		return
	}
	if lenB == 1 {
		copyA()
		return
	}
	minGallop := s.minGallop
	for {
		winsA, winsB := 0, 0
		for {
			if s.less(tmp[cursorTmp], a[cursorA]) {
				a[dest] = a[cursorA]
				dest--
				cursorA--
				winsA++
				lenA--
				winsB = 0
				if lenA == 0 {
					succeed()
					return
				}
				if winsA >= minGallop {
					break
				}
			} else {
				a[dest] = tmp[cursorTmp]
				dest--
				cursorTmp--
				winsB++
				lenB--
				winsA = 0
				if lenB == 1 {
					copyA()
					return
				}
				if winsB >= minGallop {
					break
				}
			}
		}
		minGallop++
		for first := true; first || winsA >= minGallopWins || winsB >= minGallopWins; first = false {
			minGallop = max(1, minGallop-1)
			s.minGallop = minGallop

			k := s.gallopRight(a, tmp[cursorTmp], baseA, lenA, lenA-1)
			winsA = lenA - k
			if winsA > 0 {
				dest -= winsA
				cursorA -= winsA
				copy(a[dest+1:dest+1+winsA], a[cursorA+1:cursorA+1+winsA])
				lenA -= winsA
				if lenA == 0 {
					succeed()
					return
				}
			}
			a[dest] = tmp[cursorTmp]
			dest--
			cursorTmp--
			lenB--
			if lenB == 1 {
				copyA()
				return
			}

			k = s.gallopLeft(tmp, a[cursorA], 0, lenB, lenB-1)
			winsB = lenB - k
			if winsB > 0 {
				dest -= winsB
				cursorTmp -= winsB
				copy(a[dest+1:dest+1+winsB], tmp[cursorTmp+1:cursorTmp+1+winsB])
				lenB -= winsB
				if lenB == 1 {
					copyA()
					return
				}
				if lenB == 0 { // an inconsistent comparefn
					succeed()
					return
				}
			}
			a[dest] = a[cursorA]
			dest--
			cursorA--
			lenA--
			if lenA == 0 {
				succeed()
				return
			}
		}
		minGallop++
		s.minGallop = minGallop
	}
}
