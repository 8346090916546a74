// Package reclaim gives the memory of a burst back to the operating system
// within seconds of the burst's end.
//
// After a burst of streams and sessions ends, the heap's garbage waits for
// the next collection, and Go starts one only when the heap grows again or,
// failing that, after two minutes; the background scavenger then returns
// the freed pages slowly. A process whose load has halved keeps its peak's
// resident memory meanwhile. Run watches a count of the things that hold
// memory and, when it has fallen a lot, collects and returns the free
// memory at once.
//
// Concurrency: Run is one goroutine; Config's functions are called from it
// only, one at a time.
package reclaim
