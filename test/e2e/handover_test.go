package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

// leaseName is the manager's leader election ID.
const leaseName = "temporal-batch.batch.temporalbatch.io"

var _ = Describe("Leader hand-over", func() {
	It("keeps status monotonic and one workflow when the leading manager is stopped and then killed", func(ctx SpecContext) {
		leaseNS := newNamespace("leases")
		ns := newNamespace("handover")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")

		By("replacing the manager with two replicas that elect a leader")
		env.StopManager()
		DeferCleanup(env.StartManager)
		// Stopped after the job is deleted (cleanups run last first), so that
		// a manager removes the job's finalizer.
		var replicas []*localenv.ManagerProcess
		DeferCleanup(func() {
			for _, m := range replicas {
				m.Stop()
			}
		})
		startReplica := func() *localenv.ManagerProcess {
			GinkgoHelper()
			m, err := env.StartExtraManager(ctx, "--leader-elect", "--leader-election-namespace", leaseNS)
			Expect(err).NotTo(HaveOccurred())
			replicas = append(replicas, m)
			return m
		}
		startReplica()
		startReplica()
		leader, holder := waitLeader(leaseNS, replicas, "")
		GinkgoWriter.Printf("replica pid %d leads as %s\n", leader.Pid(), holder)

		// 160 pages of about a second each, 4 at a time: some 40 s.
		job := syntheticJob(ns, "handed-over", examples.SyntheticArgs{TotalItems: 16000, ItemDelay: "10ms", Ledger: ledger})
		rec := recordStatus(ns, job.Name)
		create(job)
		Eventually(status(job, pagesCompleted)).WithTimeout(time.Minute).Should(BeNumerically(">=", 5))
		firstRun := get(job).Status.Workflow
		Expect(firstRun).NotTo(BeNil())
		Expect(firstRun.RunID).NotTo(BeEmpty())

		By("stopping the leader with SIGTERM: it releases the lease")
		stopped := leader
		atStop := rec.last().completed
		Expect(atStop).To(BeNumerically("<", 160), "the job ended before the first hand-over")
		stopped.Stop()
		leader, holder = waitLeader(leaseNS, replicas, holder, stopped)
		GinkgoWriter.Printf("after the SIGTERM, replica pid %d leads as %s (%d pages done at the stop)\n", leader.Pid(), holder, atStop)
		Eventually(func() int64 { return rec.last().completed }).WithTimeout(time.Minute).Should(BeNumerically(">", atStop),
			"status did not move under the new leader")

		By("starting a replacement replica, then killing the leader with SIGKILL: the lease runs out")
		startReplica()
		killed := leader
		pid := killed.Pid()
		atKill := rec.last().completed
		Expect(atKill).To(BeNumerically("<", 160), "the job ended before the second hand-over")
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		killedAt := time.Now()
		// No restart: the replica that took over is one that was running.
		killed.Stop()
		Expect(localenv.ProcessAlive(pid)).To(BeFalse())
		leader, holder = waitLeader(leaseNS, replicas, holder, stopped, killed)
		GinkgoWriter.Printf("%.1fs after the SIGKILL, replica pid %d leads as %s (%d pages done at the kill)\n",
			time.Since(killedAt).Seconds(), leader.Pid(), holder, atKill)
		Eventually(func() int64 { return rec.last().completed }).WithTimeout(time.Minute).Should(BeNumerically(">", atKill),
			"status did not move under the new leader")

		done := waitComplete(job, 3*time.Minute)
		expectSucceeded(done, 16000, 0, 160)
		expectEveryItem(readLedger(ledger), 16000, 100)

		By("checking every status the job went through")
		Eventually(func() batchv1alpha1.BatchJobPhase { return rec.last().phase }).Should(Equal(batchv1alpha1.PhaseSucceeded))
		events, problems := rec.stop()
		Expect(problems).To(BeEmpty(), "the watch of the job")
		GinkgoWriter.Printf("%d status changes watched\n", len(events))
		expectMonotonic(events, firstRun.RunID, 160, 16000)

		By("checking that Temporal started the workflow once")
		Expect(done.Status.Workflow.RunID).To(Equal(firstRun.RunID), "status.workflow.runId changed")
		Eventually(func(g Gomega) {
			runs, err := workflowRuns(firstRun.ID)
			g.Expect(err).NotTo(HaveOccurred())
			var first []string
			for _, run := range runs {
				g.Expect(run.GetStatus()).NotTo(Equal(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING))
				started, err := startedEvent(firstRun.ID, run.GetExecution().GetRunId())
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(started.GetFirstExecutionRunId()).To(Equal(firstRun.RunID), "run %s belongs to another chain of runs", run.GetExecution().GetRunId())
				if started.GetContinuedExecutionRunId() == "" {
					first = append(first, run.GetExecution().GetRunId())
				}
			}
			g.Expect(first).To(Equal([]string{firstRun.RunID}), "runs of the workflow ID not continued from another")
		}).Should(Succeed())
		desc, err := describeWorkflow(firstRun.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(desc.GetWorkflowExecutionInfo().GetStatus()).To(Equal(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED))
	}, NodeTimeout(5*time.Minute))
})

// waitLeader waits for a replica other than those excluded to lead: the
// Lease names a holder other than previous, the replica's metrics say it
// leads, and its log that it acquired the lease. It returns the replica and the holder.
func waitLeader(leaseNS string, replicas []*localenv.ManagerProcess, previous string, excluded ...*localenv.ManagerProcess) (*localenv.ManagerProcess, string) {
	GinkgoHelper()
	var leader *localenv.ManagerProcess
	var holder string
	Eventually(func(g Gomega) {
		var lease coordinationv1.Lease
		g.Expect(k8s.Get(background, client.ObjectKey{Namespace: leaseNS, Name: leaseName}, &lease)).To(Succeed())
		g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
		holder = *lease.Spec.HolderIdentity
		g.Expect(holder).NotTo(BeEmpty())
		g.Expect(holder).NotTo(Equal(previous), "the lease still has its holder")
		var leading []*localenv.ManagerProcess
		for _, m := range replicas {
			if m.Pid() == 0 {
				continue
			}
			if yes, err := leads(m); err == nil && yes {
				leading = append(leading, m)
			}
		}
		g.Expect(leading).To(HaveLen(1), "replicas that say they lead")
		leader = leading[0]
		for _, m := range excluded {
			g.Expect(leader).NotTo(BeIdenticalTo(m), "a stopped replica leads")
		}
		log, err := os.ReadFile(leader.Log)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(log)).To(MatchRegexp(`msg="Successfully acquired lease".* lock=%s/%s`, regexp.QuoteMeta(leaseNS), regexp.QuoteMeta(leaseName)),
			"the log of the leading replica")
	}).WithTimeout(time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
	return leader, holder
}

var leaderGauge = regexp.MustCompile(`(?m)^leader_election_master_status(\{[^}]*\})? 1$`)

// leads reads from a manager's metrics whether it holds the lease.
func leads(m *localenv.ManagerProcess) (bool, error) {
	ctx, cancel := context.WithTimeout(background, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.MetricsAddress+"/metrics", nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s", resp.Status)
	}
	return leaderGauge.Match(body), nil
}

// statusEvent is a job's status as one watch event showed it.
type statusEvent struct {
	at                   time.Time
	resourceVersion      string
	phase                batchv1alpha1.BatchJobPhase
	completed, processed int64
	runID                string
}

func (e statusEvent) String() string {
	return fmt.Sprintf("%s rv %s: %s, %d pages, %d items, run %q", e.at.Format("15:04:05.000"), e.resourceVersion, e.phase, e.completed, e.processed, e.runID)
}

// statusRecorder watches a job and keeps every status it showed.
type statusRecorder struct {
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	events   []statusEvent
	problems []string
}

// recordStatus watches the job from before it exists until stop, watching
// again from the last resource version whenever the server ends the watch.
func recordStatus(ns, name string) *statusRecorder {
	GinkgoHelper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: localenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(background)
	r := &statusRecorder{cancel: cancel, done: make(chan struct{})}
	// The first watch starts before the job is created: it sees every change.
	w, err := wc.Watch(ctx, &batchv1alpha1.BatchJobList{}, client.InNamespace(ns))
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		defer close(r.done)
		rv := ""
		for {
			for ev := range w.ResultChan() {
				switch ev.Type {
				case watch.Added, watch.Modified:
					job, ok := ev.Object.(*batchv1alpha1.BatchJob)
					if !ok {
						continue
					}
					rv = job.ResourceVersion
					if job.Name != name {
						continue
					}
					var run string
					if job.Status.Workflow != nil {
						run = job.Status.Workflow.RunID
					}
					r.mu.Lock()
					r.events = append(r.events, statusEvent{time.Now(), job.ResourceVersion, job.Status.Phase,
						job.Status.Pages.Completed, job.Status.Items.Processed, run})
					r.mu.Unlock()
				case watch.Error:
					if ctx.Err() != nil {
						// The watch ends with the error of its cancelled request.
						continue
					}
					r.mu.Lock()
					r.problems = append(r.problems, fmt.Sprintf("watch error after resource version %s: %v", rv, ev.Object))
					r.mu.Unlock()
				}
			}
			w.Stop()
			if ctx.Err() != nil {
				return
			}
			for {
				w, err = wc.Watch(ctx, &batchv1alpha1.BatchJobList{}, &client.ListOptions{Namespace: ns, Raw: &metav1.ListOptions{ResourceVersion: rv}})
				if err == nil {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}()
	DeferCleanup(func() { r.stop() })
	return r
}

// last is the latest status watched; the zero status before the first.
func (r *statusRecorder) last() statusEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return statusEvent{}
	}
	return r.events[len(r.events)-1]
}

// stop ends the watch and returns what it saw.
func (r *statusRecorder) stop() ([]statusEvent, []string) {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events, r.problems
}

var phaseOrder = map[batchv1alpha1.BatchJobPhase]int{
	"":                           0,
	batchv1alpha1.PhasePending:   1,
	batchv1alpha1.PhaseRunning:   2,
	batchv1alpha1.PhaseSucceeded: 3,
}

// expectMonotonic checks the statuses a job went through: counters never
// decrease, the phase only moves forward through Pending, Running and
// Succeeded, Succeeded only with every page and item done, and the run ID
// never changes once set.
func expectMonotonic(events []statusEvent, runID string, pages, items int64) {
	GinkgoHelper()
	Expect(events).NotTo(BeEmpty())
	var problems []string
	for i, e := range events {
		if _, ok := phaseOrder[e.phase]; !ok {
			problems = append(problems, fmt.Sprintf("phase %s: %v", e.phase, e))
		}
		if e.runID != "" && e.runID != runID {
			problems = append(problems, fmt.Sprintf("another run ID: %v", e))
		}
		if e.phase == batchv1alpha1.PhaseSucceeded && (e.completed != pages || e.processed != items) {
			problems = append(problems, fmt.Sprintf("Succeeded before the end: %v", e))
		}
		if i == 0 {
			continue
		}
		p := events[i-1]
		if e.completed < p.completed || e.processed < p.processed {
			problems = append(problems, fmt.Sprintf("counters went back: %v, then %v", p, e))
		}
		if phaseOrder[e.phase] < phaseOrder[p.phase] {
			problems = append(problems, fmt.Sprintf("phase went back: %v, then %v", p, e))
		}
		if p.runID != "" && e.runID == "" {
			problems = append(problems, fmt.Sprintf("run ID lost: %v, then %v", p, e))
		}
	}
	Expect(problems).To(BeEmpty(), "status changes watched")
	Expect(events[len(events)-1].phase).To(Equal(batchv1alpha1.PhaseSucceeded))
}

// workflowRuns lists the runs of a workflow ID that Temporal's visibility
// holds.
func workflowRuns(id string) ([]*workflowpb.WorkflowExecutionInfo, error) {
	ctx, cancel := context.WithTimeout(background, 10*time.Second)
	defer cancel()
	var runs []*workflowpb.WorkflowExecutionInfo
	var token []byte
	for {
		resp, err := tc.WorkflowService().ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: env.TemporalNamespace, Query: fmt.Sprintf("WorkflowId = '%s'", id), NextPageToken: token,
		})
		if err != nil {
			return nil, err
		}
		runs = append(runs, resp.GetExecutions()...)
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return runs, nil
		}
	}
}

// startedEvent is the first event of a run's history.
func startedEvent(id, runID string) (*historypb.WorkflowExecutionStartedEventAttributes, error) {
	ctx, cancel := context.WithTimeout(background, 10*time.Second)
	defer cancel()
	it := tc.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return nil, fmt.Errorf("run %s has no history", runID)
	}
	ev, err := it.Next()
	if err != nil {
		return nil, err
	}
	a := ev.GetWorkflowExecutionStartedEventAttributes()
	if a == nil {
		return nil, fmt.Errorf("run %s begins with %s", runID, ev.GetEventType())
	}
	return a, nil
}
