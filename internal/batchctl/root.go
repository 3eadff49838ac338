// Package batchctl is the kubectl batch plugin: it shows BatchJobs (list,
// get, watch) and steers them (pause, resume, scale, redrive) through the
// Kubernetes API, the same way the controller reads and writes them.
//
// Every command reads and writes through the Client and IOStreams of
// Options, so the whole CLI runs in-process against any API server.
package batchctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/scheme"
)

// Options are what the commands read and write through.
type Options struct {
	// IOStreams are the command's input and outputs.
	IOStreams genericiooptions.IOStreams
	// Client, when set, is used instead of a client built from the
	// kubeconfig flags (--kubeconfig, --context, --server, ...). The
	// namespace still comes from -n or the kubeconfig's context.
	Client client.WithWatch
	// Terminal says whether IOStreams.Out is a terminal, which makes watch
	// redraw its view in place. Nil detects it.
	Terminal *bool
}

// Exit codes of Run.
const (
	ExitOK = 0
	// ExitFailed: the command failed, or the job watched failed.
	ExitFailed = 1
	// ExitInterrupted: interrupted (Ctrl-C) before the command finished.
	ExitInterrupted = 130
)

// Run runs the CLI with args (without the program name) and returns the
// process exit code. Errors go to IOStreams.ErrOut the way kubectl prints
// them.
func Run(ctx context.Context, args []string, o Options) int {
	cmd := NewCommand(o)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return reportError(o.IOStreams, err)
}

func reportError(streams genericiooptions.IOStreams, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, errInterrupted) {
		return ExitInterrupted
	}
	var reported *reportedError
	if !errors.As(err, &reported) {
		fmt.Fprintf(streams.ErrOut, "error: %v\n", err)
	}
	return ExitFailed
}

// reportedError is a failure the command already explained on its output
// (a watched job that failed); it only sets the exit code.
type reportedError struct{ msg string }

func (e *reportedError) Error() string { return e.msg }

var errInterrupted = errors.New("interrupted")

// env is what a command needs at run time: a client and the namespace.
// It is resolved lazily, so that --help and completion of flags need no
// cluster.
type env struct {
	opts   Options
	flags  *genericclioptions.ConfigFlags
	client client.WithWatch
	ns     string
}

func (e *env) streams() genericiooptions.IOStreams { return e.opts.IOStreams }

// setup builds the client and resolves the namespace.
func (e *env) setup() error {
	if e.client != nil {
		return nil
	}
	ns, _, err := e.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil && e.opts.Client == nil {
		return err
	}
	if ns == "" {
		ns = "default"
	}
	c := e.opts.Client
	if c == nil {
		cfg, err := e.flags.ToRESTConfig()
		if err != nil {
			return err
		}
		cfg = rest.CopyConfig(cfg)
		cfg.UserAgent = "kubectl-batch"
		cfg.WarningHandler = rest.NewWarningWriter(e.opts.IOStreams.ErrOut, rest.WarningWriterOptions{Deduplicate: true})
		c, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
		if err != nil {
			return fmt.Errorf("create a Kubernetes client: %w", err)
		}
	}
	e.client, e.ns = c, ns
	return nil
}

// terminal says whether the output is a terminal.
func (e *env) terminal() bool {
	if e.opts.Terminal != nil {
		return *e.opts.Terminal
	}
	f, ok := e.opts.IOStreams.Out.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// job reads one BatchJob of the namespace.
func (e *env) job(ctx context.Context, name string) (*batchv1alpha1.BatchJob, error) {
	job := &batchv1alpha1.BatchJob{}
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, job); err != nil {
		return nil, e.explain(err, name)
	}
	return job, nil
}

// explain turns API errors a user commonly meets into sentences.
func (e *env) explain(err error, name string) error {
	switch {
	case apierrors.IsNotFound(err) && name != "":
		return fmt.Errorf("batchjob %q not found in namespace %q", name, e.ns)
	case meta.IsNoMatchError(err):
		return fmt.Errorf("the cluster has no BatchJob API (%s): install Temporal Batch first", batchv1alpha1.GroupVersion)
	case errors.Is(err, context.Canceled):
		return errInterrupted
	}
	return err
}

// NewCommand builds the kubectl-batch command tree.
func NewCommand(o Options) *cobra.Command {
	e := &env{opts: o, flags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{
		Use:   "kubectl-batch",
		Short: "Watch and steer Temporal Batch jobs (BatchJobs)",
		Long: `Watch and steer Temporal Batch jobs.

kubectl batch shows BatchJobs with their progress, rate, ETA and failures,
follows a job live until it finishes, and pauses, resumes, scales or
re-drives it. It uses your kubeconfig like kubectl does.`,
		Example: `  kubectl batch list -A
  kubectl batch get inflate-prices -n shop
  kubectl batch watch inflate-prices -n shop --timeout 1h
  kubectl batch pause inflate-prices -n shop
  kubectl batch scale inflate-prices -n shop --parallelism 20
  kubectl batch redrive inflate-prices -n shop`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl batch"},
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(o.IOStreams.In)
	root.SetOut(o.IOStreams.Out)
	root.SetErr(o.IOStreams.ErrOut)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help' for usage", err, cmd.CommandPath())
	})
	e.flags.AddFlags(root.PersistentFlags())
	_ = root.RegisterFlagCompletionFunc("namespace", e.completeNamespaces)

	root.AddCommand(
		newListCommand(e),
		newGetCommand(e),
		newWatchCommand(e),
		newPauseCommand(e),
		newResumeCommand(e),
		newScaleCommand(e),
		newRedriveCommand(e),
	)
	return root
}

// nameArg accepts exactly one job name.
func nameArg(cmd *cobra.Command, args []string) error {
	switch len(args) {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("a job name is required: %s\nSee '%s --help' for usage", strings.TrimSpace(strings.Replace(cmd.UseLine(), "[flags]", "", 1)), cmd.CommandPath())
	default:
		return fmt.Errorf("one job name is expected, got %d: %s", len(args), strings.Join(args, " "))
	}
}

// jobKey names a job the way messages show it: namespace/name.
func jobKey(job *batchv1alpha1.BatchJob) string {
	return job.Namespace + "/" + job.Name
}
