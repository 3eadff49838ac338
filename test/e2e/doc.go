// Package e2e is the end-to-end suite of Temporal Batch: BatchJobs run on one
// local environment (internal/localenv) with etcd, kube-apiserver, a Temporal
// dev server backed by a SQLite file, the real manager binary, and the local
// Deployment runner running example-worker processes for the worker
// Deployments. The specs check what a user would notice, also while the
// manager, a worker or the Temporal server is killed or restarted mid-run.
//
// `make test-e2e` builds what it needs and runs it; `go test -short` skips it.
package e2e
