package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/worker"
)

// Run connects to Temporal, registers the processors with register and runs a
// worker on cfg.TaskQueue until ctx is done or the process receives SIGTERM or
// SIGINT. It then stops polling and gives the pages in flight cfg.GracePeriod
// to finish before cancelling them; a cancelled page is retried elsewhere. A
// second signal during that wait ends the process at once.
//
// Run returns nil after a requested stop and an error when the worker could
// not start or failed.
func Run(ctx context.Context, cfg Config, register func(worker.Registry)) error {
	cfg = cfg.withDefaults()
	if cfg.TaskQueue == "" {
		return errors.New("processor.Run: Config.TaskQueue is empty: set it, or TEMPORAL_TASK_QUEUE when using ConfigFromEnv")
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger := slog.Default().With("job", cfg.Job, "taskQueue", cfg.TaskQueue)

	c, err := cfg.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	w := worker.New(c, cfg.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: cfg.PagesPerPod,
		WorkerStopTimeout:                  cfg.GracePeriod,
	})
	register(w)

	interrupt := make(chan any)
	go func() {
		<-ctx.Done()
		// Restoring the default signal behaviour lets an impatient second
		// signal kill the process instead of waiting out the grace period.
		stop()
		logger.Info("Stopping worker; pages in flight may finish", "gracePeriod", cfg.GracePeriod)
		close(interrupt)
	}()
	logger.Info("Starting worker", "config", cfg)
	if err := w.Run(interrupt); err != nil {
		return fmt.Errorf("worker on task queue %q: %w", cfg.TaskQueue, err)
	}
	logger.Info("Worker stopped")
	return nil
}
