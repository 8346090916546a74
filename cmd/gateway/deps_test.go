package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The gateway binary links no test code: the simulator it embeds is
// internal/chatiosim, whose test helpers live apart (internal/chatio/
// chatiotest), and nothing else may bring testing or net/http/httptest in.
func TestNoTestPackagesLinked(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list the dependencies with")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/chatio-gateway/chatio-gateway/cmd/gateway" {
		t.Fatalf("go list -deps answered %q: not the gateway's dependencies", deps)
	}
	for _, p := range deps {
		switch p {
		case "testing", "net/http/httptest":
			t.Errorf("the gateway links %s", p)
		}
	}
}
