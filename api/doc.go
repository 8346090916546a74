// Package api holds the gateway's HTTP contract, api/openapi.yaml, embedded
// so that the server can serve it at /openapi.yaml and tests can hold the
// router to it.
//
// Concurrency: OpenAPI is an immutable byte slice, read by any goroutine.
package api
