package examples

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
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
	// FailWhileEnv, when set, is the name of an environment variable that
	// makes FailPages apply: the listed pages fail only in worker processes
	// where it is set and not empty. Removing it from the worker template
	// stands for deploying the fixed code.
	FailWhileEnv string `json:"failWhileEnv,omitempty"`
	// Ledger is the path of a file that gets a line "<item> <page> <attempt>"
	// for every item processed, so that a test can prove no item was lost.
	Ledger string `json:"ledger,omitempty"`
	// PanicPages lists page numbers whose first attempt panics after
	// enqueuing its successors and before processing any item, as a
	// processor with a bug on some input would; later attempts succeed.
	PanicPages []int64 `json:"panicPages,omitempty"`
	// OversizedCursorFrom, when positive, is an item ID: a successor cursor
	// whose offset is that item or later is padded with leading zeros to
	// one byte over processor.MaxCursorBytes, so that the page producing it
	// fails for good with processor.ErrorTypeCursorTooLarge.
	OversizedCursorFrom int64 `json:"oversizedCursorFrom,omitempty"`
}

// PageFailure makes the first Attempts attempts of a page fail with an
// application error of type Type; Attempts 0 fails every attempt.
type PageFailure struct {
	Type     string `json:"type"`
	Attempts int32  `json:"attempts"`
}

// Synthetic is the synthetic processor: it walks a data set that exists only
// as a count, simulating fetch and processing time and failing items and
// pages on request, for samples, demos, load tests and end-to-end tests.
//
// Its cursor is "<offset>" or "<offset>:<end>", decimal item IDs: the page
// starts at item offset (empty means 0), and its chain stops before item end
// (absent: totalItems). A job that starts several chains
// (spec.processor.cursors) gives each its part, e.g. "0:500", "500:1000",
// "1000"; every successor keeps its chain's ":<end>", so no chain runs into
// the next one's items. See [ParseSyntheticCursor].
//
// A page sleeps for fetchDelay, enqueues up to page.Lookahead() following
// pages of its chain (computed by offset arithmetic, none past the end), and
// only then applies failPages, so a failing page has already enqueued its
// successors, as a real processor failing after its fetch would have. It
// then processes its items, itemDelay each, and writes their ledger lines in
// a single append.
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
	cursor, err := ParseSyntheticCursor(page.Cursor, args.TotalItems)
	if err != nil {
		return processor.Result{}, err
	}

	hb := &heartbeater{page: page}
	if err := hb.sleep(ctx, fetchDelay); err != nil {
		return processor.Result{}, err
	}
	if next := cursor.successors(page.Size, page.Lookahead()); len(next) > 0 {
		if args.OversizedCursorFrom > 0 {
			next = oversize(next, args.OversizedCursorFrom, args.TotalItems)
		}
		if err := page.EnqueueNext(ctx, next...); err != nil {
			return processor.Result{}, err
		}
	}
	if page.Attempt == 1 && slices.Contains(args.PanicPages, page.Number) {
		panic(fmt.Sprintf("page %d attempt 1 panics as spec.processor.args.panicPages asks", page.Number))
	}
	if failure, ok := args.FailPages[strconv.FormatInt(page.Number, 10)]; ok {
		failing, err := failureInEffect(args.FailWhileExists)
		if err != nil {
			return processor.Result{}, err
		}
		if args.FailWhileEnv != "" && os.Getenv(args.FailWhileEnv) == "" {
			failing = false
		}
		if failing && (failure.Attempts == 0 || page.Attempt <= failure.Attempts) {
			return processor.Result{}, processor.Retryable(failure.Type,
				"page %d attempt %d fails as spec.processor.args.failPages asks", page.Number, page.Attempt)
		}
	}

	var processed int64
	var ledger strings.Builder
	for item := cursor.Offset; item < cursor.pageEnd(page.Size); item++ {
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

// SyntheticCursor is a parsed synthetic cursor: where a page starts and
// where its chain stops.
type SyntheticCursor struct {
	// Offset is the ID of the page's first item.
	Offset int64
	// End is the ID after the chain's last item: the cursor's ":<end>", or
	// totalItems when it has none.
	End int64
	// Bounded says the cursor carried ":<end>"; successors carry it too.
	Bounded bool
}

// syntheticCursorForm is the accepted form, for error messages.
const syntheticCursorForm = `"<offset>" or "<offset>:<end>": decimal item IDs, ` +
	`the page's first item and the item its chain stops before (end exclusive, default totalItems), ` +
	`0 <= offset <= end <= totalItems; an empty offset means 0`

// ParseSyntheticCursor parses a synthetic cursor for a data set of
// totalItems items. An offset at or past totalItems without an end is valid
// and is an empty page, as it always was; an explicit end past totalItems or
// before the offset is not, because that chain's part of the data does not
// exist: the error fails the page for good with type InvalidCursor.
func ParseSyntheticCursor(cursor string, totalItems int64) (SyntheticCursor, error) {
	invalid := func(why string) (SyntheticCursor, error) {
		return SyntheticCursor{}, processor.NonRetryable(processor.ErrorTypeInvalidCursor,
			"cursor %q: %s; a synthetic cursor is %s (totalItems is %d)", cursor, why, syntheticCursorForm, totalItems)
	}
	c := SyntheticCursor{End: totalItems}
	offset, end, bounded := strings.Cut(cursor, ":")
	if offset != "" {
		n, err := strconv.ParseInt(offset, 10, 64)
		if err != nil || n < 0 {
			return invalid(fmt.Sprintf("offset %q is not a decimal item ID, 0 or more", offset))
		}
		c.Offset = n
	}
	if !bounded {
		return c, nil
	}
	n, err := strconv.ParseInt(end, 10, 64)
	switch {
	case err != nil || n < 0:
		return invalid(fmt.Sprintf("end %q is not a decimal item ID, 0 or more", end))
	case n > totalItems:
		return invalid(fmt.Sprintf("end %d is past totalItems", n))
	case n < c.Offset:
		return invalid(fmt.Sprintf("end %d is before offset %d", n, c.Offset))
	}
	c.End, c.Bounded = n, true
	return c, nil
}

// String formats the cursor as ParseSyntheticCursor reads it.
func (c SyntheticCursor) String() string {
	if c.Bounded {
		return strconv.FormatInt(c.Offset, 10) + ":" + strconv.FormatInt(c.End, 10)
	}
	return strconv.FormatInt(c.Offset, 10)
}

// pageEnd is the ID after the page's last item.
func (c SyntheticCursor) pageEnd(size int) int64 {
	if c.Offset >= c.End {
		return c.Offset
	}
	// End-Offset cannot overflow, Offset+size could.
	return c.Offset + min(int64(size), c.End-c.Offset)
}

// successors returns the cursors of up to n pages that follow the page at
// c in its chain: offset+k*size for k = 1..n, while before the chain's end.
// They keep c's end when c carried one.
func (c SyntheticCursor) successors(size, n int) []string {
	var next []string
	for k := int64(1); k <= int64(n); k++ {
		step := k * int64(size)
		if c.Offset >= c.End || step >= c.End-c.Offset {
			break
		}
		s := c
		s.Offset += step
		next = append(next, s.String())
	}
	return next
}

// SplitSynthetic returns cursors for spec.processor.cursors that split a
// synthetic data set of totalItems items into chains parts of about equal
// size (fewer when there are fewer items): "0:<b1>", "<b1>:<b2>", ...,
// "<bn-1>". Together they cover every item once.
func SplitSynthetic(totalItems int64, chains int) []string {
	parts := min(int64(max(chains, 1)), totalItems)
	if parts <= 1 {
		return []string{""}
	}
	cursors := make([]string, 0, parts)
	// The first totalItems%parts parts get one item more; i*q cannot
	// overflow where i*totalItems could.
	q, r := totalItems/parts, totalItems%parts
	var start int64
	for i := int64(1); i < parts; i++ {
		end := i*q + min(i, r)
		cursors = append(cursors, SyntheticCursor{Offset: start, End: end, Bounded: true}.String())
		start = end
	}
	return append(cursors, SyntheticCursor{Offset: start}.String())
}

// oversize pads the cursors at or past item from with leading zeros to one
// byte over processor.MaxCursorBytes; they still parse as the same offset.
func oversize(cursors []string, from, totalItems int64) []string {
	out := make([]string, len(cursors))
	for i, c := range cursors {
		out[i] = c
		if parsed, err := ParseSyntheticCursor(c, totalItems); err == nil && parsed.Offset >= from {
			out[i] = strings.Repeat("0", processor.MaxCursorBytes+1-len(c)) + c
		}
	}
	return out
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
