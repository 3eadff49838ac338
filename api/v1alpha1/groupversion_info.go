// Package v1alpha1 contains the BatchJob API of the batch.temporalbatch.io group.
// +kubebuilder:object:generate=true
// +groupName=batch.temporalbatch.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the BatchJob API.
	GroupVersion = schema.GroupVersion{Group: "batch.temporalbatch.io", Version: "v1alpha1"}

	// SchemeBuilder adds the API's types to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
