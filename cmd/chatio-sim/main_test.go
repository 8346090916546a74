package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

func TestParseLicenses(t *testing.T) {
	got, err := parseLicenses(" 1, 22 ,333")
	if err != nil || !reflect.DeepEqual(got, []int64{1, 22, 333}) {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := parseLicenses(""); err != nil || got != nil {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"x", "0", "-3", "1,,2"} {
		if _, err := parseLicenses(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestReadTokens(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte("# comment\nalpha cust-a\n\nbeta\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := readTokens(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alpha": "cust-a", "beta": chatiosim.CustomerIDForToken("beta")}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("%v", m)
	}
	if err := os.WriteFile(p, []byte("a b c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readTokens(p); err == nil {
		t.Fatal("three fields accepted")
	}
}

func TestRunHelp(t *testing.T) {
	if err := run([]string{"-h"}); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-licenses", "x"}); err == nil {
		t.Fatal("bad -licenses accepted")
	}
}
