package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// decodeArgsStrict decodes a page's args, refusing fields the processor does
// not know: these processors drive tests, and a misspelt failPages that is
// silently ignored would make a test pass for the wrong reason.
func decodeArgsStrict(page *processor.Page, v any) error {
	if len(page.Args) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(page.Args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return processor.NonRetryable(processor.ErrorTypeInvalidArgs, "decode spec.processor.args: %v", err)
	}
	return nil
}

// parseDelay parses an optional non-negative Go duration argument.
func parseDelay(arg, value string) (time.Duration, error) {
	if value == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 {
		return 0, processor.NonRetryable(processor.ErrorTypeInvalidArgs,
			"spec.processor.args.%s %q is not a non-negative Go duration such as 10ms or 2s", arg, value)
	}
	return d, nil
}

// heartbeatInterval is how often the processors heartbeat while they work:
// well inside the default 30s heartbeat timeout, and rarely enough that a
// page of instant items does not spend its time encoding heartbeats.
const heartbeatInterval = time.Second

// heartbeater heartbeats a page at most every heartbeatInterval.
type heartbeater struct {
	page *processor.Page
	last time.Time
}

func (h *heartbeater) beat(ctx context.Context) {
	if now := time.Now(); now.Sub(h.last) >= heartbeatInterval {
		h.page.Heartbeat(ctx)
		h.last = now
	}
}

// sleep waits for d or until ctx is done, heartbeating meanwhile so that a
// delay longer than the heartbeat timeout does not time the page out.
func (h *heartbeater) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	ticker := time.NewTicker(heartbeatInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return nil
		case <-ticker.C:
			h.beat(ctx)
		}
	}
}
