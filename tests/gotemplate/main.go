// Command gotemplate parses template strings with Go's own text/template, the parser Argo CD's
// notifications engine and ApplicationSet controller use, and reports each parse error and the
// field chains each template reads from the top-level data (for schema checks in the specs).
//
// Standard library only, so it builds offline. Input on stdin: a JSON list of
// {"id", "text", "funcs"}; output on stdout: a JSON list of {"id", "error", "fields"}.
//
// Functions are parse-time stubs: text/template checks at parse time that every function a
// template calls exists, so each engine's real function map is named here (see funcs.go).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/template"
	"text/template/parse"
)

type request struct {
	ID    string `json:"id"`
	Text  string `json:"text"`
	Funcs string `json:"funcs"`
}

type result struct {
	ID     string     `json:"id"`
	Error  string     `json:"error,omitempty"`
	Fields [][]string `json:"fields"`
}

func stubs(names []string) template.FuncMap {
	m := template.FuncMap{}
	for _, name := range names {
		m[name] = func(...any) any { return nil }
	}
	return m
}

func main() {
	var requests []request
	if err := json.NewDecoder(os.Stdin).Decode(&requests); err != nil {
		fmt.Fprintln(os.Stderr, "gotemplate: reading requests:", err)
		os.Exit(2)
	}
	maps := map[string]template.FuncMap{
		"notifications":  stubs(notificationsFuncs()),
		"applicationset": stubs(applicationSetFuncs()),
	}
	results := make([]result, 0, len(requests))
	for _, req := range requests {
		funcs, ok := maps[req.Funcs]
		if !ok {
			fmt.Fprintf(os.Stderr, "gotemplate: %s: unknown function set %q\n", req.ID, req.Funcs)
			os.Exit(2)
		}
		res := result{ID: req.ID, Fields: [][]string{}}
		tmpl, err := template.New(req.ID).Funcs(funcs).Parse(req.Text)
		if err != nil {
			res.Error = err.Error()
		} else {
			for _, t := range tmpl.Templates() {
				if t.Tree != nil {
					collect(t.Tree.Root, true, &res.Fields)
				}
			}
		}
		results = append(results, res)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "gotemplate: writing results:", err)
		os.Exit(2)
	}
}

// collect appends the field chains read from the top-level data: `.a.b` while dot is still the
// top level (outside with/range), and `$.a.b` anywhere.
func collect(node parse.Node, topDot bool, out *[][]string) {
	switch n := node.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			collect(c, topDot, out)
		}
	case *parse.ActionNode:
		collect(n.Pipe, topDot, out)
	case *parse.IfNode:
		collectBranch(&n.BranchNode, topDot, topDot, out)
	case *parse.WithNode:
		collectBranch(&n.BranchNode, topDot, false, out)
	case *parse.RangeNode:
		collectBranch(&n.BranchNode, topDot, false, out)
	case *parse.TemplateNode:
		collect(n.Pipe, topDot, out)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			collect(c, topDot, out)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			collect(a, topDot, out)
		}
	case *parse.FieldNode:
		if topDot {
			*out = append(*out, n.Ident)
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			*out = append(*out, n.Ident[1:])
		}
	case *parse.ChainNode:
		// (pipeline).field: only the pipeline's own fields are known to be rooted.
		collect(n.Node, topDot, out)
	}
}

func collectBranch(b *parse.BranchNode, topDot, innerTopDot bool, out *[][]string) {
	collect(b.Pipe, topDot, out)
	collect(b.List, innerTopDot, out)
	collect(b.ElseList, topDot, out)
}
