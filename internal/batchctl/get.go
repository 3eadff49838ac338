package batchctl

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/scheme"
)

func newGetCommand(e *env) *cobra.Command {
	print := genericclioptions.NewPrintFlags("").WithTypeSetter(scheme.New())
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a job's progress, rate, ETA, parallelism and failures",
		Long: `Show one BatchJob: its phase, a progress bar (items processed; pages
completed and in flight), items per second, the time left where the size of
the data set is known, parallelism desired and in effect, the mean pages in
flight, the chains done (when the job has several), the lookahead, failures
by type with the most recent ones, the workflow and the conditions.

When the chains, not the parallelism, set the pace (Progressing has the
reason ChainBound), a line says so and what to change.

The size of the data set is known when spec.processor.args.totalItems is set
(as for the synthetic processor); otherwise no ETA is estimated.`,
		Example: `  kubectl batch get inflate-prices -n shop
  kubectl batch get inflate-prices -n shop -o yaml`,
		Args:              nameArg,
		ValidArgsFunction: e.completeJobNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.setup(); err != nil {
				return err
			}
			job, err := e.job(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if *print.OutputFormat != "" {
				p, err := print.ToPrinter()
				if err != nil {
					return err
				}
				return p.PrintObj(job, e.streams().Out)
			}
			return describe(e.streams().Out, job, time.Now())
		},
	}
	print.AddFlags(cmd)
	return cmd
}

// describe writes the human view of a job.
func describe(out io.Writer, job *batchv1alpha1.BatchJob, now time.Time) error {
	p := progressOf(job)
	st := job.Status
	w := printers.GetNewTabWriter(out)
	field := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%s:\t"+format+"\n", append([]any{name}, args...)...)
	}
	field("Name", "%s", job.Name)
	field("Namespace", "%s", job.Namespace)
	field("Phase", "%s", phaseLine(job, p))
	if p.Sized {
		field("Progress", "%s %s", p.Bar(30), p.ItemsText())
	} else {
		field("Progress", "%s (size of the data set unknown)", p.ItemsText())
	}
	field("Pages", "%s", p.PagesText())
	field("Rate", "%s", p.RateText())
	field("ETA", "%s", p.ETAText())
	field("Parallelism", "%s", parallelismText(job, p))
	if s := occupancyText(job); s != "" {
		field("Occupancy", "%s (last window)", s)
	}
	if s := chainsText(job); s != "" {
		field("Chains", "%s", s)
	}
	if s := lookaheadText(job); s != "" {
		field("Lookahead", "%s", s)
	}
	if chainBound(job) {
		field("Chain-bound", "the chains set the pace, not the parallelism: %s", chainBoundFix)
	}
	if st.Workers != nil {
		field("Workers", "%s", workersText(job))
	}
	if st.Workflow != nil {
		wf := st.Workflow.ID
		if st.Workflow.Namespace != "" {
			wf += " (Temporal namespace " + st.Workflow.Namespace + ")"
		}
		field("Workflow", "%s", wf)
	} else {
		field("Workflow", "not started yet")
	}
	if st.StartTime != nil {
		field("Started", "%s (%s ago)", st.StartTime.UTC().Format(time.RFC3339), age(st.StartTime.Time, now))
	}
	if st.CompletionTime != nil {
		took := ""
		if st.StartTime != nil {
			took = ", took " + roundDuration(st.CompletionTime.Sub(st.StartTime.Time))
		}
		field("Completed", "%s (%s ago%s)", st.CompletionTime.UTC().Format(time.RFC3339), age(st.CompletionTime.Time, now), took)
	}
	if st.LastRedrive != "" || job.Annotations[batchv1alpha1.AnnotationRedrive] != "" {
		field("Last re-drive", "%s", redriveText(job))
	}
	if s := st.Signals; s != nil {
		field("Signals ignored", "%d duplicate, %d unexpected, %d malformed, %d rejected", s.Duplicate, s.Unexpected, s.Malformed, s.Rejected)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out)
	writeFailures(out, st.Failures, now)
	fmt.Fprintln(out)
	writeConditions(out, st.Conditions, now)
	return nil
}

func phaseLine(job *batchv1alpha1.BatchJob, p progress) string {
	s := string(p.Phase)
	switch {
	case p.Phase == batchv1alpha1.PhaseFailed:
		if c := meta.FindStatusCondition(job.Status.Conditions, batchv1alpha1.ConditionFailed); c != nil && c.Reason != "" {
			s += " (" + c.Reason + ")"
		}
	case job.Spec.Suspend && p.Phase != batchv1alpha1.PhaseSuspended && !finished(p.Phase):
		s += " (pause requested)"
	case !job.Spec.Suspend && p.Phase == batchv1alpha1.PhaseSuspended:
		s += " (resume requested)"
	}
	return s
}

func parallelismText(job *batchv1alpha1.BatchJob, p progress) string {
	s := fmt.Sprintf("%d in effect of %d desired", p.Effective, p.Desired)
	if mx := job.Status.Parallelism.MaxAchieved; mx > 0 {
		s += fmt.Sprintf(", at most %d reached", mx)
	}
	if job.Spec.Parallelism != nil && *job.Spec.Parallelism != p.Desired && !finished(p.Phase) {
		s += fmt.Sprintf(" (spec asks for %d; not applied yet)", *job.Spec.Parallelism)
	}
	return s
}

func redriveText(job *batchv1alpha1.BatchJob) string {
	asked := job.Annotations[batchv1alpha1.AnnotationRedrive]
	done := job.Status.LastRedrive
	waiting := "not acted on yet"
	if redriveWaits(job) {
		waiting = fmt.Sprintf("waits for the worker rollout to reach generation %d", job.Generation)
	}
	switch {
	case asked == "" || asked == done:
		return done
	case done == "":
		return asked + " (requested, " + waiting + ")"
	default:
		return fmt.Sprintf("%s (requested, %s; the last one acted on was %s)", asked, waiting, done)
	}
}

func writeFailures(out io.Writer, f *batchv1alpha1.FailureStatus, now time.Time) {
	if f == nil || (len(f.ByType) == 0 && len(f.Recent) == 0) {
		fmt.Fprintln(out, "Failures: none")
		return
	}
	w := printers.GetNewTabWriter(out)
	fmt.Fprintln(w, "Failures by type:")
	for _, t := range sortedTypes(f.ByType) {
		fmt.Fprintf(w, "  %s\t%s\n", t, count(f.ByType[t]))
	}
	_ = w.Flush()
	if f.HandlerDropped > 0 {
		fmt.Fprintf(out, "Failure handler: %s failures not accepted within spec.failurePolicy.handlerTimeout\n", count(f.HandlerDropped))
	}
	if len(f.Recent) == 0 {
		return
	}
	fmt.Fprintln(out, "Recent failures (newest first):")
	w = printers.GetNewTabWriter(out)
	fmt.Fprintln(w, "  AGE\tPAGE\tITEM\tTYPE\tMESSAGE")
	for _, r := range f.Recent {
		when := "-"
		if r.Time != nil {
			when = age(r.Time.Time, now)
		}
		item := r.Item
		if item == "" {
			item = "(page)"
		}
		fmt.Fprintf(w, "  %s\t%d\t%s\t%s\t%s\n", when, r.Page, oneLine(item, 40), r.Type, oneLine(r.Message, 100))
	}
	_ = w.Flush()
}

func writeConditions(out io.Writer, conds []metav1.Condition, now time.Time) {
	if len(conds) == 0 {
		fmt.Fprintln(out, "Conditions: none reported yet")
		return
	}
	fmt.Fprintln(out, "Conditions:")
	w := printers.GetNewTabWriter(out)
	fmt.Fprintln(w, "  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
	for _, c := range conds {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, age(c.LastTransitionTime.Time, now), oneLine(c.Message, 120))
	}
	_ = w.Flush()
}

// oneLine keeps a text on one table row of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// sortedTypes is the failure types, most frequent first, then by name so
// that the output is stable.
func sortedTypes(byType map[string]int64) []string {
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	slices.SortFunc(types, func(a, b string) int {
		if c := cmp.Compare(byType[b], byType[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return types
}
