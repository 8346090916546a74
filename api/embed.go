// Package api holds the gateway's HTTP contract, api/openapi.yaml, embedded
// so that the server can serve it at /openapi.yaml and tests can hold the
// router to it.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the gateway's HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte
