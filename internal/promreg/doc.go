// Package promreg registers Prometheus collectors so that several
// components sharing one registry (two pools or two servers in a test, or
// a restarted component) share the series instead of failing.
//
// Concurrency: Register is safe for concurrent use (the registry's own
// lock); it starts no goroutine and holds nothing.
package promreg
