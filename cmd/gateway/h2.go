package main

import (
	"fmt"
	"net/http"

	"golang.org/x/net/http2"
)

// configureHTTP2 serves HTTP/2 (h2c here) with golang.org/x/net/http2
// instead of net/http's bundled copy, for one reason: the write scheduler.
// The bundled server has only a round-robin scheduler that walks every open
// stream of a connection each time it picks a frame to write, idle ones
// included. Behind a load balancer thousands of mostly idle event streams
// share a connection, and that walk took half of the gateway's CPU at
// 10,000 streams over 8 connections (bench/RESULTS.md). The random
// scheduler only visits streams that have something to write.
//
// It must be called before the server starts; the rest of the HTTP/2
// settings are the same as net/http's (MaxConcurrentStreams from
// srv.HTTP2 applies too).
func configureHTTP2(srv *http.Server, maxStreams int) error {
	// x/net/http2's server is deprecated in favour of net/http's own
	// (Server.Protocols), which has no write scheduler to choose.
	//lint:ignore SA1019 the random write scheduler (see above) exists only here
	h2 := &http2.Server{MaxConcurrentStreams: uint32(maxStreams), NewWriteScheduler: func() http2.WriteScheduler { return http2.NewRandomWriteScheduler() }}
	//lint:ignore SA1019 as above
	if err := http2.ConfigureServer(srv, h2); err != nil {
		return fmt.Errorf("http2: %w", err)
	}
	return nil
}
