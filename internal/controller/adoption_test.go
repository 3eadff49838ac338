package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	enumspb "go.temporal.io/api/enums/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

var _ = Describe("Manager killed between the workflow start and the first status write", Ordered, func() {
	It("adopts the workflow the dead manager started: one run, status.workflow written, exact counters", func() {
		ctx := context.Background()
		ns := newNamespace("died")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		job := syntheticJob(ns, "orphan", map[string]any{"totalItems": 6000, "itemDelay": "3ms", "ledger": ledger})

		// The suite's manager steps aside for one that dies right after it
		// started the job's workflow: the status write that records it fails,
		// and so does every write after it, as if the process were gone.
		mgrRun.stop()
		death := &deathAfterStart{statusPath: fmt.Sprintf("/namespaces/%s/batchjobs/%s/status", ns, job.Name), died: make(chan struct{})}
		cfg := recording(restConfig)
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { death.rt = rt; return death })
		dying := startManagerOn(cfg, managerOptions(temporal.Address))
		restarted := false
		DeferCleanup(func() {
			if !restarted {
				dying.stop()
				mgrRun = startManager(managerOptions(temporal.Address))
			}
		})

		Expect(k8s.Create(ctx, job)).To(Succeed())
		Eventually(death.died, 30*time.Second).Should(BeClosed(), "the manager never tried to record a workflow in status")
		dying.stop()
		lost := death.lostRunID()
		Expect(lost).NotTo(BeEmpty())
		id := fmt.Sprintf("batchjob/%s/%s/%s", ns, job.Name, get(job).UID)

		By("checking what a user sees before the restart: no workflow in status, one running in Temporal")
		Expect(get(job).Status.Workflow).To(BeNil(), "the failed write reached status")
		desc, err := tc.DescribeWorkflowExecution(ctx, id, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()).To(Equal(lost))
		Expect(desc.GetWorkflowExecutionInfo().GetStatus()).To(Equal(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING))

		By("starting a new manager, as the restarted process")
		mgrRun = startManager(managerOptions(temporal.Address))
		restarted = true
		Eventually(func() *batchv1alpha1.WorkflowRef { return get(job).Status.Workflow }, 30*time.Second, 100*time.Millisecond).
			Should(Equal(&batchv1alpha1.WorkflowRef{Namespace: "default", ID: id, RunID: lost}), "status.workflow is not the run the dead manager started")
		Eventually(get, 2*time.Minute, 300*time.Millisecond).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted))

		done := get(job)
		Expect(done.Status.Phase).To(Equal(batchv1alpha1.PhaseSucceeded))
		Expect(done.Status.Workflow.RunID).To(Equal(lost), "a second workflow was started")
		Expect(done.Status.Items.Processed).To(BeEquivalentTo(6000))
		Expect(done.Status.Items.Failed).To(BeZero())
		Expect(done.Status.Pages.Completed).To(BeEquivalentTo(60))
		Expect(done.Status.Pages.Failed).To(BeZero())
		Expect(executions(id)).To(Equal(1), "Temporal ran more than one workflow for the job")
		Expect(workflowStatus(id)).To(Equal(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED))
		expectLedgerOnce(ledger, 6000)
	})
})

// deathAfterStart is the transport of a manager that dies right after
// starting a workflow: the first status write of one job that records a
// workflow fails, and so does every write after it. Reads still answer, as
// they would until the process is gone.
type deathAfterStart struct {
	rt         http.RoundTripper
	statusPath string
	died       chan struct{}

	mu    sync.Mutex
	dead  bool
	runID string
}

func (d *deathAfterStart) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet {
		return d.rt.RoundTrip(req)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, errors.New("the manager process is gone")
	}
	if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, d.statusPath) && req.Body != nil {
		raw, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(raw))
		var job batchv1alpha1.BatchJob
		if json.Unmarshal(raw, &job) == nil && job.Status.Workflow != nil {
			d.dead, d.runID = true, job.Status.Workflow.RunID
			close(d.died)
			return nil, errors.New("the manager process is gone")
		}
	}
	return d.rt.RoundTrip(req)
}

// lostRunID is the run ID of the status write that failed.
func (d *deathAfterStart) lostRunID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runID
}

// expectLedgerOnce checks that the synthetic processor's ledger holds the
// items 0..total-1 exactly once each.
func expectLedgerOnce(path string, total int) {
	GinkgoHelper()
	raw, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	seen := make(map[int]int, total)
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var item, page, attempt int
		_, err := fmt.Sscanf(line, "%d %d %d", &item, &page, &attempt)
		Expect(err).NotTo(HaveOccurred(), "ledger line %q", line)
		seen[item]++
		if item < 0 || item >= total || seen[item] > 1 {
			problems = append(problems, line)
		}
	}
	Expect(problems).To(BeEmpty(), "items out of range or processed twice")
	Expect(seen).To(HaveLen(total), "items missing from the ledger")
}
