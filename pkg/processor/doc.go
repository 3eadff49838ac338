// Package processor is the Go toolkit for writing Temporal Batch page
// processors.
//
// A BatchJob walks a data set page by page. Each page is a Temporal activity of
// type spec.processor.name on spec.taskQueue, run by the user's worker pods. A
// page processor fetches its page, enqueues the next page's cursor with
// [Page.EnqueueNext] before doing the work, so the orchestrator can start the
// next page in parallel, then processes the items and returns how many it
// processed. Items that cannot be processed are reported with [Page.FailItem];
// the page still succeeds and the orchestrator counts them by type.
//
// A worker binary is typically:
//
//	func main() {
//		cfg, err := processor.ConfigFromEnv()
//		if err != nil {
//			slog.Error("invalid configuration", "error", err)
//			os.Exit(2)
//		}
//		err = processor.Run(context.Background(), cfg, func(r worker.Registry) {
//			processor.Register(r, "InflateProductPrices", inflatePrices)
//		})
//		if err != nil {
//			slog.Error("worker stopped", "error", err)
//			os.Exit(1)
//		}
//	}
//
// The wire types in contract.go are the contract every Temporal SDK can
// implement; docs/processor-contract.md in the repository describes it in
// full for authors of workers in other languages, and testdata/contract has
// a golden JSON fixture of each message. This package hides the types
// behind [Func], [Page] and [Result].
package processor
