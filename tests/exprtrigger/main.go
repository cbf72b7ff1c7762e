// Command exprtrigger evaluates notification trigger expressions with expr-lang/expr, at the
// version Argo CD v3.6.2 builds its notifications controller with (argo-cd go.mod), the way
// notifications-engine pkg/triggers/service.go does: expr.Compile, then expr.Run with the
// Application as the variable `app`; a `when` counts only when it yields the bool true, and a
// oncePer value becomes the state key prefix fmt.Sprintf("%v", value).
//
// Input on stdin: a JSON list of {"id", "expression", "app"}; output on stdout: a JSON list of
// {"id", "value", "text", "error"} (text is the %v formatting the engine keys its state with).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/expr-lang/expr"
)

type request struct {
	ID         string         `json:"id"`
	Expression string         `json:"expression"`
	App        map[string]any `json:"app"`
}

type result struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
	Text  string `json:"text"`
	Error string `json:"error,omitempty"`
}

func main() {
	var requests []request
	if err := json.NewDecoder(os.Stdin).Decode(&requests); err != nil {
		fmt.Fprintln(os.Stderr, "exprtrigger: reading requests:", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(requests))
	for _, req := range requests {
		res := result{ID: req.ID}
		program, err := expr.Compile(req.Expression)
		if err != nil {
			res.Error = "compile: " + err.Error()
		} else if value, err := expr.Run(program, map[string]any{"app": req.App}); err != nil {
			res.Error = "run: " + err.Error()
		} else {
			res.Value = value
			res.Text = fmt.Sprintf("%v", value)
		}
		results = append(results, res)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "exprtrigger: writing results:", err)
		os.Exit(2)
	}
}
