package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// Without GOGC in the environment the gateway collects at defaultGOGC; an
// operator's GOGC is left alone.
func TestGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	t.Setenv("GOGC", "100") // restored after the test, as is its absence
	setGCPercent()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC=100 set: GC percent %d, want 100 (left alone)", got)
	}

	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	setGCPercent()
	if got := debug.SetGCPercent(100); got != defaultGOGC {
		t.Fatalf("without GOGC: GC percent %d, want %d", got, defaultGOGC)
	}
}
