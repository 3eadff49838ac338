// Package admitted reads the BatchJob specs that admission accepts, kept in
// api/v1alpha1/testdata/admitted: the admission suite applies every one of
// them to a kube-apiserver, and the controller's tests check that every one
// of them, as stored, converts into a valid orchestrator input. One list for
// both, so that they cannot drift apart.
//
// Each file holds the YAML of one spec. It is a text/template, so that
// large values need not be spelled out:
//
//	{{cursors N LEN}}   a YAML flow list of N distinct cursors of LEN characters
//	{{repeat "é" N}}    the string repeated N times
package admitted

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
)

// Dir is where the specs live, relative to the repository root.
const Dir = "api/v1alpha1/testdata/admitted"

// Spec is one admitted spec.
type Spec struct {
	// Name is the file name without .yaml.
	Name string
	// YAML is the spec, templates expanded.
	YAML string
}

// Specs reads every spec under Dir of the repository at root, by name.
func Specs(root string) ([]Spec, error) {
	paths, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(Dir), "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no specs under %s", filepath.Join(root, filepath.FromSlash(Dir)))
	}
	sort.Strings(paths)
	specs := make([]Spec, 0, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(filepath.Base(p)).Funcs(template.FuncMap{
			"cursors": Cursors,
			"repeat":  func(s string, n int) string { return strings.Repeat(s, n) },
		}).Parse(string(raw))
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, nil); err != nil {
			return nil, err
		}
		specs = append(specs, Spec{Name: strings.TrimSuffix(filepath.Base(p), ".yaml"), YAML: out.String()})
	}
	return specs, nil
}

// Get returns the spec of that name.
func Get(root, name string) (string, error) {
	specs, err := Specs(root)
	if err != nil {
		return "", err
	}
	for _, s := range specs {
		if s.Name == name {
			return s.YAML, nil
		}
	}
	return "", fmt.Errorf("no spec %s.yaml under %s", name, Dir)
}

// Cursors is a YAML flow list of n distinct cursors of length characters
// each: the cursor's number, zero-padded.
func Cursors(n, length int) string {
	cursors := make([]string, n)
	for i := range cursors {
		cursors[i] = fmt.Sprintf(`"%0*d"`, length, i)
	}
	return "[" + strings.Join(cursors, ", ") + "]"
}
