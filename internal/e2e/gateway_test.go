package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// gateway is a whole gateway (pool + HTTP API) served on 127.0.0.1.
type gateway struct {
	URL  string
	Pool *session.Pool
	API  *httpapi.Server
	Reg  *prometheus.Registry
}

// gatewayOptions tune a test gateway.
type gatewayOptions struct {
	session func(*session.Config)
	http    func(*httpapi.Config)
}

// startGateway serves a gateway for upstream url (license) until the test
// ends.
func startGateway(t testing.TB, url string, license int64) string {
	return startGatewayWith(t, url, license, gatewayOptions{}).URL
}

func startGatewayWith(t testing.TB, url string, license int64, o gatewayOptions) *gateway {
	t.Helper()
	// Each gateway has an upstream HTTP client of its own, as a gateway
	// process would: chatio's shared default client is one per process,
	// and the tests run gateways side by side. (That sharing races: the
	// first upload's RoundTrip sets the transport's TLS config up while a
	// dial elsewhere clones it; see chatio's defaultHTTPClient.)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	t.Cleanup(tr.CloseIdleConnections)
	scfg := session.Config{
		Upstream: chatio.Config{
			URL:            url,
			License:        license,
			RequestTimeout: 5 * time.Second,
			HTTPClient:     &http.Client{Transport: tr},
		},
		ReconnectMin:  20 * time.Millisecond,
		ReconnectMax:  200 * time.Millisecond,
		ReconnectWait: 5 * time.Second,
	}
	if o.session != nil {
		o.session(&scfg)
	}
	reg := prometheus.NewRegistry()
	log := zap.NewNop()
	pool := session.NewPool(scfg, log, reg)
	hcfg := httpapi.Config{HeartbeatInterval: time.Second}
	if o.http != nil {
		o.http(&hcfg)
	}
	api := httpapi.New(hcfg, pool, log, reg)
	srv := httptest.NewUnstartedServer(api.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.CloseClientConnections()
		srv.Close()
		_ = pool.Shutdown(ctx)
	})
	return &gateway{URL: srv.URL, Pool: pool, API: api, Reg: reg}
}

var _ = http.StatusOK
