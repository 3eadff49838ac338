// Command trimcrd removes the descriptions under spec.worker.template from the
// generated BatchJob CRD. The embedded pod template's descriptions are
// Kubernetes' own (kubectl explain pod.spec shows them) and would make the
// CRD too large for client-side kubectl apply.
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: trimcrd CRD.yaml")
		os.Exit(2)
	}
	if err := trim(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "trimcrd:", err)
		os.Exit(1)
	}
}

func trim(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var crd map[string]any
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		return err
	}
	versions, _ := dig(crd, "spec", "versions").([]any)
	trimmed := 0
	for _, v := range versions {
		tmpl, ok := dig(v, "schema", "openAPIV3Schema", "properties", "spec", "properties", "worker", "properties", "template").(map[string]any)
		if !ok {
			return fmt.Errorf("%s: no spec.worker.template in the schema", path)
		}
		desc := tmpl["description"]
		stripDescriptions(tmpl)
		tmpl["description"] = desc
		trimmed++
	}
	if trimmed == 0 {
		return fmt.Errorf("%s: no versions", path)
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte("---\n"), out...), 0o644)
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func stripDescriptions(v any) {
	switch t := v.(type) {
	case map[string]any:
		delete(t, "description")
		for _, child := range t {
			stripDescriptions(child)
		}
	case []any:
		for _, child := range t {
			stripDescriptions(child)
		}
	}
}
