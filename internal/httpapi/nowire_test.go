package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestNoWireNames: the HTTP layer knows the SDK's shapes and op's calls,
// not the upstream's wire: no chatio action name and no payload member
// name in its code (they are internal/chatio's).
func TestNoWireNames(t *testing.T) {
	wire := map[string]bool{
		"chat_id": true, "thread_id": true, "thread_ids": true, "routing_scope": true,
		"sneak_peek_text": true, "custom_id": true, "threads_summary": true, "total_threads": true,
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING && wire[s] {
					t.Errorf("%s: wire member name %s", fset.Position(n.Pos()), n.Value)
				}
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "chatio" && strings.HasPrefix(n.Sel.Name, "Action") {
					t.Errorf("%s: chatio.%s", fset.Position(n.Pos()), n.Sel.Name)
				}
			}
			return true
		})
	}
}
