package batchctl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// Bounds of spec.parallelism, as the CRD validates them.
const (
	minParallelism = 0
	maxParallelism = 10000
)

// redriveTimeFormat is RFC 3339 with nanoseconds always written, so that two
// re-drives never carry the same value.
const redriveTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func newPauseCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "pause NAME",
		Short: "Pause a job: no new pages start; pages in flight finish",
		Long: `Pause a job by setting spec.suspend to true. No new pages start; the pages
in flight finish. Resume it with 'kubectl batch resume NAME'.`,
		Example:           `  kubectl batch pause inflate-prices -n shop`,
		Args:              nameArg,
		ValidArgsFunction: e.completeJobNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.steer(cmd.Context(), args[0], "pause", func(job *batchv1alpha1.BatchJob) (any, string) {
				if job.Spec.Suspend {
					return nil, fmt.Sprintf("batchjob %s is already paused", jobKey(job))
				}
				return map[string]any{"spec": map[string]any{"suspend": true}},
					fmt.Sprintf("batchjob %s paused: no new pages start; pages in flight finish", jobKey(job))
			})
		},
	}
}

func newResumeCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:               "resume NAME",
		Short:             "Resume a paused job: new pages start again",
		Long:              `Resume a paused job by setting spec.suspend to false. New pages start again, up to the job's parallelism (growing again by spec.rampUp when set).`,
		Example:           `  kubectl batch resume inflate-prices -n shop`,
		Args:              nameArg,
		ValidArgsFunction: e.completeJobNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.steer(cmd.Context(), args[0], "resume", func(job *batchv1alpha1.BatchJob) (any, string) {
				if !job.Spec.Suspend {
					return nil, fmt.Sprintf("batchjob %s is not paused: nothing to resume", jobKey(job))
				}
				msg := fmt.Sprintf("batchjob %s resumed: new pages start again", jobKey(job))
				if job.Spec.Parallelism != nil {
					msg += fmt.Sprintf(", up to %d in flight", *job.Spec.Parallelism)
				}
				return map[string]any{"spec": map[string]any{"suspend": false}}, msg
			})
		},
	}
}

func newScaleCommand(e *env) *cobra.Command {
	var parallelism int64
	cmd := &cobra.Command{
		Use:   "scale NAME --parallelism N",
		Short: "Change how many pages a job runs at once",
		Long: fmt.Sprintf(`Set spec.parallelism, the most pages in flight at once (%d to %d). The running
job applies it without a restart; with spec.worker set, the operator scales
the worker Deployment to match. 0 holds new pages back like pause.`, minParallelism, maxParallelism),
		Example:           `  kubectl batch scale inflate-prices -n shop --parallelism 20`,
		Args:              nameArg,
		ValidArgsFunction: e.completeJobNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("parallelism") {
				return fmt.Errorf("--parallelism is required: kubectl batch scale %s --parallelism N", args[0])
			}
			if parallelism < minParallelism || parallelism > maxParallelism {
				return fmt.Errorf("--parallelism must be between %d and %d, got %d", minParallelism, maxParallelism, parallelism)
			}
			n := int32(parallelism)
			return e.steer(cmd.Context(), args[0], "scale", func(job *batchv1alpha1.BatchJob) (any, string) {
				if job.Spec.Parallelism != nil && *job.Spec.Parallelism == n {
					return nil, fmt.Sprintf("batchjob %s already has parallelism %d", jobKey(job), n)
				}
				from := "unset"
				if job.Spec.Parallelism != nil {
					from = fmt.Sprint(*job.Spec.Parallelism)
				}
				msg := fmt.Sprintf("batchjob %s scaled: parallelism %s -> %d", jobKey(job), from, n)
				switch {
				case n == 0:
					msg += ": no new pages start until you scale it up again; pages in flight finish"
				case job.Spec.Suspend:
					msg += fmt.Sprintf(" (the job is paused; it runs up to %d pages once resumed)", n)
				default:
					msg += fmt.Sprintf(": up to %d pages in flight", n)
				}
				return map[string]any{"spec": map[string]any{"parallelism": n}}, msg
			})
		},
	}
	cmd.Flags().Int64Var(&parallelism, "parallelism", 0, fmt.Sprintf("The most pages in flight at once, %d to %d (required).", minParallelism, maxParallelism))
	return cmd
}

func newRedriveCommand(e *env) *cobra.Command {
	var includeUnknown, afterRollout bool
	cmd := &cobra.Command{
		Use:   "redrive NAME",
		Short: "Run a job's failed pages again with a fresh retry budget",
		Long: fmt.Sprintf(`Ask for a re-drive by setting the annotation %s to the
current time. The operator acts on each new value once: the failed pages (and
a broken chain's frontier) run again with a fresh retry budget, also on a job
that failed for them, which then returns to Running.

Under AtMostOnce delivery a page that failed after it may have processed some
of its items (cancelled in flight, timed out, killed) has an unknown outcome
(status.pages.unknown): a re-drive leaves it failed, since running it again
could process items twice. Check what those pages did, then re-drive with
--include-unknown, which also sets %s to "true".

To run the failed pages on fixed worker code, edit spec.worker.template (a new
image, say) and re-drive with --after-rollout, which also sets %s
to "true": the operator holds the re-drive until every worker pod runs the
template of the job's current generation (status.workers.templateGeneration),
then sends it. Stuck pages need no re-drive: they run on the new pods at their
next retry.`, batchv1alpha1.AnnotationRedrive, batchv1alpha1.AnnotationRedriveIncludeUnknown, batchv1alpha1.AnnotationRedriveAfterRollout),
		Example: `  kubectl batch redrive inflate-prices -n shop
  kubectl batch redrive send-invoices -n billing --include-unknown
  # deploy the fixed worker image, then re-drive once every worker runs it
  kubectl patch batchjob inflate-prices -n shop --type json \
    -p '[{"op":"replace","path":"/spec/worker/template/spec/containers/0/image","value":"ghcr.io/acme/pricer:v1.2.1"}]'
  kubectl batch redrive inflate-prices -n shop --after-rollout`,
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
			if phaseOf(job) == batchv1alpha1.PhaseSucceeded && job.Status.Pages.Failed == 0 {
				return fmt.Errorf("batchjob %s succeeded with no failed pages: there is nothing to re-drive", jobKey(job))
			}
			if afterRollout && job.Spec.Worker == nil {
				return fmt.Errorf("batchjob %s has no spec.worker: its workers run outside the operator, which cannot tell when they run new code; re-drive without --after-rollout once they do", jobKey(job))
			}
			value := time.Now().UTC().Format(redriveTimeFormat)
			// Both annotations in one patch: the operator reads them together.
			annotations := map[string]any{batchv1alpha1.AnnotationRedrive: value, batchv1alpha1.AnnotationRedriveIncludeUnknown: nil}
			if includeUnknown {
				annotations[batchv1alpha1.AnnotationRedriveIncludeUnknown] = "true"
			}
			annotations[batchv1alpha1.AnnotationRedriveAfterRollout] = nil
			if afterRollout {
				annotations[batchv1alpha1.AnnotationRedriveAfterRollout] = "true"
			}
			patch := map[string]any{"metadata": map[string]any{"annotations": annotations}}
			if err := e.patch(cmd.Context(), job, patch); err != nil {
				return err
			}
			scope := redriveScope(job, includeUnknown)
			if afterRollout {
				scope += fmt.Sprintf(", once every worker pod runs the template of generation %d", job.Generation)
			}
			fmt.Fprintf(e.streams().Out, "batchjob %s re-drive requested (%s=%s): %s\n",
				jobKey(job), batchv1alpha1.AnnotationRedrive, value, scope)
			return nil
		},
	}
	cmd.Flags().BoolVar(&includeUnknown, "include-unknown", false, "Run the failed pages whose outcome is unknown (AtMostOnce pages that may have processed some of their items) again too.")
	cmd.Flags().BoolVar(&afterRollout, "after-rollout", false, "Hold the re-drive until every worker pod runs the spec.worker template of the job's current generation: deploy the fix, then re-drive.")
	return cmd
}

// redriveScope says what the re-drive will run again.
func redriveScope(job *batchv1alpha1.BatchJob, includeUnknown bool) string {
	failed, unknown := job.Status.Pages.Failed, job.Status.Pages.Unknown
	if unknown > 0 && !includeUnknown {
		return fmt.Sprintf("%s failed pages run again with a fresh retry budget; %s whose outcome is unknown stay failed (check them, then add --include-unknown)",
			count(failed-unknown), count(unknown))
	}
	switch {
	case failed == 1:
		return "its failed page runs again with a fresh retry budget"
	case failed > 1:
		return fmt.Sprintf("its %s failed pages run again with a fresh retry budget", count(failed))
	case phaseOf(job) == batchv1alpha1.PhaseFailed:
		return "the pages that failed it run again with a fresh retry budget"
	default:
		return "failed pages run again with a fresh retry budget"
	}
}

// steer reads the job, refuses a finished one, and merge-patches what
// change asks for; change returns a nil patch when there is nothing to do,
// with the message to print either way.
func (e *env) steer(ctx context.Context, name, verb string, change func(*batchv1alpha1.BatchJob) (patch any, msg string)) error {
	if err := e.setup(); err != nil {
		return err
	}
	job, err := e.job(ctx, name)
	if err != nil {
		return err
	}
	if phase := phaseOf(job); finished(phase) {
		msg := fmt.Sprintf("batchjob %s has already %s: there is nothing to %s", jobKey(job), strings.ToLower(string(phase)), verb)
		if phase == batchv1alpha1.PhaseFailed || job.Status.Pages.Failed > 0 {
			msg += fmt.Sprintf("; 'kubectl batch redrive %s -n %s' runs its failed pages again", job.Name, job.Namespace)
		}
		return fmt.Errorf("%s", msg)
	}
	patch, msg := change(job)
	if patch != nil {
		if err := e.patch(ctx, job, patch); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.streams().Out, msg)
	return nil
}

// patch applies a JSON merge patch to the job.
func (e *env) patch(ctx context.Context, job *batchv1alpha1.BatchJob, patch any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if err := e.client.Patch(ctx, job, client.RawPatch(types.MergePatchType, data)); err != nil {
		return e.explain(err, job.Name)
	}
	return nil
}
