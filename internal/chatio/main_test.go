package chatio

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's test run when any test (this package's or
// package chatio_test's) leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
