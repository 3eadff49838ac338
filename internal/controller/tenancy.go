package controller

import (
	"crypto/rand"
	"fmt"
	"strings"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// Tenancy. BatchJobs of several Kubernetes namespaces may share one Temporal
// namespace: the task queue policy keeps each job's pages and failure
// handler on its own namespace's task queues, and the enqueue token keeps
// senders that are not the job's pages from enqueuing cursors into it
// (docs/security.md).

// TaskQueuePolicy says which task queues a BatchJob may name in
// spec.taskQueue: the platform admin's choice (the manager's
// --task-queue-policy).
type TaskQueuePolicy string

const (
	// TaskQueuesAny lets a job name any task queue.
	TaskQueuesAny TaskQueuePolicy = "Any"
	// TaskQueuesNamespacePrefix lets a job name only task queues that start
	// with its namespace and a dot ("team-a.orders" in namespace team-a).
	// A namespace name has no dot, so no namespace's prefix is another's.
	// The page processor and the failure handler run on spec.taskQueue, so
	// both stay on the namespace's queues.
	TaskQueuesNamespacePrefix TaskQueuePolicy = "NamespacePrefix"
)

// ParseTaskQueuePolicy reads the value of --task-queue-policy.
func ParseTaskQueuePolicy(s string) (TaskQueuePolicy, error) {
	switch p := TaskQueuePolicy(s); p {
	case TaskQueuesAny, TaskQueuesNamespacePrefix:
		return p, nil
	}
	return "", fmt.Errorf("task queue policy %q: use %s or %s", s, TaskQueuesAny, TaskQueuesNamespacePrefix)
}

// taskQueueNotAllowed is a spec.taskQueue the policy does not allow: the job
// fails with ReasonTaskQueueNotAllowed rather than ReasonInvalidSpec.
type taskQueueNotAllowed struct{ msg string }

func (e *taskQueueNotAllowed) Error() string { return e.msg }

// check returns a taskQueueNotAllowed error naming the queue to use when the
// policy does not allow the job's spec.taskQueue; the zero policy is Any.
func (p TaskQueuePolicy) check(job *batchv1alpha1.BatchJob) error {
	if p != TaskQueuesNamespacePrefix {
		return nil
	}
	prefix, q := job.Namespace+".", job.Spec.TaskQueue
	if strings.HasPrefix(q, prefix) && len(q) > len(prefix) {
		return nil
	}
	use := prefix + q
	if q == prefix {
		use = prefix + "<queue>"
	}
	return &taskQueueNotAllowed{fmt.Sprintf(
		"spec.taskQueue %q must start with %q under this cluster's task queue policy (%s): use %q, and have the job's workers poll it; spec.taskQueue cannot change, so create the BatchJob again",
		q, prefix, p, use)}
}

// newEnqueueToken is the enqueue token of a new orchestrator workflow: 128
// random bits. It need not be derived from the job: a start that finds the
// job's workflow already there adopts it, and the token it was started with,
// and discards the new input; a re-drive of a closed workflow starts from
// its Result, token included. The controller never reads it back.
func newEnqueueToken() string {
	return rand.Text()
}
