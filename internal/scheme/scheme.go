// Package scheme holds the Kubernetes types the operator and its tools read
// and write: the built-in ones and BatchJob.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// New returns a scheme with the built-in types and BatchJob.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := batchv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
