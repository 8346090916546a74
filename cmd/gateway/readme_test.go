package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestReadmeListsEveryVariable: the README's configuration table stays true
// to the configuration the binary reads.
func TestReadmeListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(config{})
	n := 0
	for i := 0; i < typ.NumField(); i++ {
		name := typ.Field(i).Tag.Get("envconfig")
		if name == "" {
			continue
		}
		n++
		def := typ.Field(i).Tag.Get("default")
		row := "| `" + name + "` |"
		line := ""
		for _, l := range strings.Split(string(readme), "\n") {
			if strings.HasPrefix(l, row) {
				line = l // the configuration table comes first
				break
			}
		}
		if line == "" {
			t.Errorf("README.md has no row for %s", name)
			continue
		}
		if def != "" && !strings.Contains(line, "`"+def+"`") {
			t.Errorf("README.md row of %s does not give its default %q: %s", name, def, line)
		}
	}
	if n < 10 {
		t.Fatalf("only %d variables found: is the config struct still named config?", n)
	}
}
