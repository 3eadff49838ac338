package batchctl

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// What the views show of a job's chains of pages and of how full its slots
// are: a job whose chains cannot enqueue pages as fast as the slots free up
// runs below its parallelism, and only the spec can change that.

// chainBoundFix is what to change when the chains set the pace.
const chainBoundFix = "raise spec.processor.lookahead or split the data with spec.processor.cursors"

// chainsText is the chains done of all, and the broken ones; "" for a job
// with one chain, whose progress says it all.
func chainsText(job *batchv1alpha1.BatchJob) string { return chainsDone(job, "%d of %d done") }

// chainsShort is chainsText for one line: "1/2 done".
func chainsShort(job *batchv1alpha1.BatchJob) string { return chainsDone(job, "%d/%d done") }

// chainsDone formats the chains done and in all with done, then the broken.
func chainsDone(job *batchv1alpha1.BatchJob, done string) string {
	c := job.Status.Chains
	if c == nil || c.Total <= 1 {
		return ""
	}
	s := fmt.Sprintf(done, c.Done, c.Total)
	if c.Broken > 0 {
		s += fmt.Sprintf(", %d broken", c.Broken)
	}
	return s
}

// lookaheadText is the lookahead in effect and where it comes from; ""
// while neither the status nor the spec tells it.
func lookaheadText(job *batchv1alpha1.BatchJob) string {
	var inEffect int32
	if c := job.Status.Chains; c != nil {
		inEffect = c.Lookahead
	}
	asked := job.Spec.Processor.Lookahead
	switch {
	case inEffect > 0 && asked == nil:
		return fmt.Sprintf("%d (follows the effective parallelism)", inEffect)
	case inEffect > 0:
		return fmt.Sprintf("%d (spec.processor.lookahead)", inEffect)
	case asked != nil:
		return fmt.Sprintf("%d (spec.processor.lookahead)", *asked)
	}
	return ""
}

// occupancyText is the mean pages in flight of the last measurement window
// against the slots in effect; "" before the first window.
func occupancyText(job *batchv1alpha1.BatchJob) string {
	st := job.Status
	if st.Pages.MeanInFlight == "" {
		return ""
	}
	return fmt.Sprintf("%s pages in flight on average of %d slots", st.Pages.MeanInFlight, st.Parallelism.Effective)
}

// chainBound says whether the controller found that the chains, not the
// parallelism, set the job's pace.
func chainBound(job *batchv1alpha1.BatchJob) bool {
	if finished(phaseOf(job)) {
		return false
	}
	c := meta.FindStatusCondition(job.Status.Conditions, batchv1alpha1.ConditionProgressing)
	return c != nil && c.Reason == batchv1alpha1.ReasonChainBound
}
