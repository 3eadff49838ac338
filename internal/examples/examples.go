// Package examples holds the page processors bundled with Temporal Batch: the
// ones the example-worker binary runs for samples, demos, load tests and the
// end-to-end tests. Their names and arguments are part of the contract
// described in the API design (section 5), so other tests can register them
// on an in-process worker and rely on their behaviour.
package examples

import (
	"os"

	"go.temporal.io/sdk/worker"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// Activity type names of the bundled processors and failure handler: the
// values of spec.processor.name and spec.failurePolicy.handler that select
// them.
const (
	NameSynthetic       = "synthetic"
	NameSQLiteMigration = "sqlite-migration"
	NameRecordFailures  = "RecordFailures"
)

// EnvFailuresFile names the environment variable that, when set, makes the
// RecordFailures handler registered by Register append every failure to that
// file as a JSON line.
const EnvFailuresFile = "EXAMPLE_FAILURES_FILE"

// Register registers the synthetic and sqlite-migration processors and the
// RecordFailures failure handler on r. It reads EnvFailuresFile now, not when
// failures arrive.
func Register(r worker.ActivityRegistry) {
	processor.Register(r, NameSynthetic, Synthetic)
	processor.Register(r, NameSQLiteMigration, SQLiteMigration)
	recorder := &FailureRecorder{File: os.Getenv(EnvFailuresFile)}
	processor.RegisterFailureHandler(r, NameRecordFailures, recorder.RecordFailures)
}
