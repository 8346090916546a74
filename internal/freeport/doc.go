// Package freeport hands out TCP ports of 127.0.0.1 for processes that
// bind them later (test and load-generator children), never the same one
// twice in a process and never from the kernel's ephemeral range, so
// neither a sibling's port nor an outgoing connection takes one between
// the pick and the bind.
//
// Concurrency: Pick may be called from any goroutine; one mutex guards
// the set of ports handed out, which grows by one per call (a test or a
// load run picks tens). It starts no goroutine.
package freeport
