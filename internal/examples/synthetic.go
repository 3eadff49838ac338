package examples

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// SyntheticArgs are the spec.processor.args of the synthetic processor.
type SyntheticArgs struct {
	// TotalItems is the size of the data set, whose items have the IDs
	// 0..TotalItems-1. Required.
	TotalItems int64 `json:"totalItems"`
	// ItemDelay is a Go duration of simulated work per item.
	ItemDelay string `json:"itemDelay,omitempty"`
	// FetchDelay is a Go duration of simulated page fetch, spent before the
	// next page is enqueued.
	FetchDelay string `json:"fetchDelay,omitempty"`
	// FailItems maps an item ID to an error type: that item is reported
	// failed and the page succeeds.
	FailItems map[string]string `json:"failItems,omitempty"`
	// FailPages maps a page number to how its attempts fail.
	FailPages map[string]PageFailure `json:"failPages,omitempty"`
	// FailWhileExists, when set, is the path of a file that makes FailPages
	// apply: the listed pages fail only while it exists. Deleting it stands
	// for fixing the cause of the failures, e.g. before a re-drive, which
	// starts the failed pages over at attempt 1.
	FailWhileExists string `json:"failWhileExists,omitempty"`
	// Ledger is the path of a file that gets a line "<item> <page> <attempt>"
	// for every item processed, so that a test can prove no item was lost.
	Ledger string `json:"ledger,omitempty"`
}

// PageFailure makes the first Attempts attempts of a page fail with an
// application error of type Type; Attempts 0 fails every attempt.
type PageFailure struct {
	Type     string `json:"type"`
	Attempts int32  `json:"attempts"`
}

// Synthetic is the synthetic processor: it walks a data set that exists only
// as a count, simulating fetch and processing time and failing items and
// pages on request, for samples, demos, load tests and end-to-end tests. Its
// cursor is the decimal offset of the page's first item; empty means 0.
//
// A page sleeps for fetchDelay, enqueues the next page (unless it is the
// last), and only then applies failPages, so a failing page has already
// enqueued its successor, as a real processor failing after its fetch would
// have. It then processes its items, itemDelay each, and writes their ledger
// lines in a single append.
func Synthetic(ctx context.Context, page *processor.Page) (processor.Result, error) {
	args := SyntheticArgs{TotalItems: -1}
	if err := decodeArgsStrict(page, &args); err != nil {
		return processor.Result{}, err
	}
	if args.TotalItems < 0 {
		return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidArgs,
			"spec.processor.args.totalItems must be set to the size of the data set, 0 or more")
	}
	itemDelay, err := parseDelay("itemDelay", args.ItemDelay)
	if err != nil {
		return processor.Result{}, err
	}
	fetchDelay, err := parseDelay("fetchDelay", args.FetchDelay)
	if err != nil {
		return processor.Result{}, err
	}
	for item, errType := range args.FailItems {
		if errType == "" {
			return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidArgs,
				"spec.processor.args.failItems[%q] must name an error type", item)
		}
	}
	for number, failure := range args.FailPages {
		if failure.Type == "" || failure.Attempts < 0 {
			return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidArgs,
				`spec.processor.args.failPages[%q] must be {"type": "<error type>", "attempts": <0 or more>}`, number)
		}
	}
	if page.Size < 1 {
		// A page of no items would enqueue itself as its own successor forever.
		return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidPageInput,
			"page size %d is not positive", page.Size)
	}
	var offset int64
	if page.Cursor != "" {
		offset, err = strconv.ParseInt(page.Cursor, 10, 64)
		if err != nil || offset < 0 {
			return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidCursor,
				"cursor %q is not the decimal offset of an item", page.Cursor)
		}
	}

	hb := &heartbeater{page: page}
	if err := hb.sleep(ctx, fetchDelay); err != nil {
		return processor.Result{}, err
	}
	end := min(offset+int64(page.Size), args.TotalItems)
	if offset+int64(page.Size) < args.TotalItems {
		if err := page.EnqueueNext(ctx, strconv.FormatInt(end, 10)); err != nil {
			return processor.Result{}, err
		}
	}
	if failure, ok := args.FailPages[strconv.FormatInt(page.Number, 10)]; ok {
		failing, err := failureInEffect(args.FailWhileExists)
		if err != nil {
			return processor.Result{}, err
		}
		if failing && (failure.Attempts == 0 || page.Attempt <= failure.Attempts) {
			return processor.Result{}, processor.Retryable(failure.Type,
				"page %d attempt %d fails as spec.processor.args.failPages asks", page.Number, page.Attempt)
		}
	}

	var processed int64
	var ledger strings.Builder
	for item := offset; item < end; item++ {
		if err := hb.sleep(ctx, itemDelay); err != nil {
			return processor.Result{}, err
		}
		id := strconv.FormatInt(item, 10)
		if errType, ok := args.FailItems[id]; ok {
			page.FailItem(id, errType, "item fails as spec.processor.args.failItems asks")
			continue
		}
		processed++
		if args.Ledger != "" {
			fmt.Fprintf(&ledger, "%d %d %d\n", item, page.Number, page.Attempt)
		}
		hb.beat(ctx)
	}
	if ledger.Len() > 0 {
		if err := appendFile(args.Ledger, []byte(ledger.String())); err != nil {
			return processor.Result{}, fmt.Errorf("write ledger: %w", err)
		}
	}
	return processor.Result{ItemsProcessed: processed}, nil
}

// failureInEffect reports whether failPages apply: always without a
// failWhileExists file, else while that file exists.
func failureInEffect(path string) (bool, error) {
	if path == "" {
		return true, nil
	}
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("spec.processor.args.failWhileExists: %w", err)
}

// appendFile appends data to the file at path with a single write. With
// O_APPEND, concurrent pages in any number of processes on one machine then
// never interleave their lines.
func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
