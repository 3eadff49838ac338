// Command kubectl-batch is the kubectl plugin of Temporal Batch: with the
// binary on PATH, `kubectl batch ...` lists, watches, pauses, resumes,
// scales and re-drives BatchJobs.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/temporal-batch/temporal-batch/internal/batchctl"
)

func main() {
	// The client libraries log through these; a CLI reports errors itself.
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := batchctl.Run(ctx, os.Args[1:], batchctl.Options{
		IOStreams: genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
	})
	stop()
	os.Exit(code)
}
