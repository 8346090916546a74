// Package testwait waits, in tests, for a condition to come true.
//
// Concurrency: For polls from the calling test's goroutine and starts
// none.
package testwait
