// Command example-worker runs the page processors bundled with Temporal
// Batch: synthetic and sqlite-migration, plus the RecordFailures failure
// handler. It serves the samples, demos, load tests and end-to-end tests.
//
// Usage:
//
//	example-worker
//	example-worker seed-sqlite --database PATH --rows N [--price-cents 1000]
//	example-worker split-sqlite --database PATH --chains N
//
// Without a subcommand it runs a worker configured by the environment the
// operator injects (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE,
// TEMPORAL_BATCH_PAGES_PER_POD, ...; see pkg/processor). Set
// EXAMPLE_FAILURES_FILE to have RecordFailures append every failure to that
// file as a JSON line. seed-sqlite creates, or replaces, the products table
// the sqlite-migration processor migrates. split-sqlite prints, as a JSON
// array, cursors for spec.processor.cursors that split that table into N key
// ranges of about equal size, one chain each.
//
// Logs are JSON lines on standard error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.temporal.io/sdk/worker"

	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

const usage = `Usage:
  example-worker
        run a worker for the synthetic and sqlite-migration processors and the
        RecordFailures failure handler, configured by TEMPORAL_* variables
  example-worker seed-sqlite --database PATH --rows N [--price-cents 1000]
        create, or replace, the products table used by sqlite-migration
  example-worker split-sqlite --database PATH --chains N
        print spec.processor.cursors that split that table into N key ranges
`

func main() {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program short of process setup; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return runWorker(ctx)
	}
	switch args[0] {
	case "seed-sqlite":
		return seedSQLite(ctx, args[1:], stderr)
	case "split-sqlite":
		return splitSQLite(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stderr, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "example-worker: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func runWorker(ctx context.Context) int {
	cfg, err := processor.ConfigFromEnv()
	if err != nil {
		slog.Error("Invalid worker configuration", "error", err)
		return 2
	}
	err = processor.Run(ctx, cfg, func(r worker.Registry) {
		examples.Register(r)
	})
	if err != nil {
		slog.Error("Worker failed", "error", err)
		return 1
	}
	return 0
}

func seedSQLite(ctx context.Context, args []string, stderr io.Writer) int {
	flags := flag.NewFlagSet("seed-sqlite", flag.ContinueOnError)
	flags.SetOutput(stderr)
	database := flags.String("database", "", "path of the SQLite file to create or update (required)")
	rows := flags.Int("rows", -1, "number of products to create, with IDs 1..N (required)")
	priceCents := flags.Int64("price-cents", 1000, "price of every product, in cents")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var problems []string
	if *database == "" {
		problems = append(problems, "--database is required: the path of the SQLite file")
	}
	if *rows < 0 {
		problems = append(problems, "--rows is required: the number of products, 0 or more")
	}
	if *priceCents < 0 {
		problems = append(problems, "--price-cents must be 0 or more")
	}
	if flags.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", flags.Args()))
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "seed-sqlite: %s\n", p)
		}
		flags.Usage()
		return 2
	}
	if err := examples.SeedProducts(ctx, *database, *rows, *priceCents); err != nil {
		slog.Error("Seeding failed", "error", err)
		return 1
	}
	slog.Info("Seeded products", "database", *database, "rows", *rows, "priceCents", *priceCents)
	return 0
}

func splitSQLite(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("split-sqlite", flag.ContinueOnError)
	flags.SetOutput(stderr)
	database := flags.String("database", "", "path of the SQLite file holding the products table (required)")
	chains := flags.Int("chains", 0, fmt.Sprintf("number of key ranges, one chain each, 1..%d (required)", temporalbatch.MaxChains))
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var problems []string
	if *database == "" {
		problems = append(problems, "--database is required: the path of the SQLite file")
	}
	if *chains < 1 || *chains > temporalbatch.MaxChains {
		problems = append(problems, fmt.Sprintf("--chains is required: the number of key ranges, 1..%d", temporalbatch.MaxChains))
	}
	if flags.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", flags.Args()))
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "split-sqlite: %s\n", p)
		}
		flags.Usage()
		return 2
	}
	if _, err := os.Stat(*database); err != nil {
		// Opening would create a missing file.
		fmt.Fprintf(stderr, "split-sqlite: %v; create it with example-worker seed-sqlite\n", err)
		return 1
	}
	db, err := examples.OpenDatabase(*database)
	if err != nil {
		slog.Error("Splitting failed", "error", err)
		return 1
	}
	defer db.Close()
	cursors, err := examples.SplitProducts(ctx, db, *chains)
	if err != nil {
		slog.Error("Splitting failed", "error", err)
		return 1
	}
	// A JSON array is also a YAML flow sequence: it pastes as is after
	// "cursors: " in a BatchJob.
	out, err := json.Marshal(cursors)
	if err != nil {
		slog.Error("Splitting failed", "error", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}
