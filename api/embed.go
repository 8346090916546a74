package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the gateway's HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte
