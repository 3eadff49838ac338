package temporalbatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

type signalHandler struct {
	name   string
	handle func(json.RawMessage)
}

// signalHandlers are the orchestrator's signals. Bodies arrive as raw JSON
// so that a malformed one is counted rather than dropped by the SDK.
func (o *orchestrator) signalHandlers() []signalHandler {
	return []signalHandler{
		{SignalEnqueuePage, o.onEnqueueSignal},
		{SignalDesiredState, o.onDesiredSignal},
		{SignalRedrive, o.onRedriveSignal},
	}
}

// listen starts a coroutine per signal and one for the failure handler.
func (o *orchestrator) listen(ctx workflow.Context) {
	for _, h := range o.signalHandlers() {
		workflow.Go(ctx, func(ctx workflow.Context) {
			ch := workflow.GetSignalChannel(ctx, h.name)
			for {
				var raw json.RawMessage
				ch.Receive(ctx, &raw)
				o.now = workflow.Now(ctx)
				h.handle(raw)
			}
		})
	}
	// A coroutine is no command: starting it in runs without a handler
	// changes nothing they replay.
	workflow.Go(ctx, o.runFailureHandler)
}

// drainSignals handles signals already delivered but not yet received, so
// that none is lost when the run continues as new.
func (o *orchestrator) drainSignals(ctx workflow.Context) {
	for _, h := range o.signalHandlers() {
		ch := workflow.GetSignalChannel(ctx, h.name)
		for {
			var raw json.RawMessage
			if !ch.ReceiveAsync(&raw) {
				break
			}
			h.handle(raw)
		}
	}
}

// enqueueBody is either form of the EnqueuePage body: the single cursor of
// processor.EnqueuePage or the batch of processor.EnqueuePageBatch.
type enqueueBody struct {
	Number  int64    `json:"number"`
	Cursor  *string  `json:"cursor"`
	Cursors []string `json:"cursors"`
	// Token is checked by onEnqueueSignal before the body is parsed.
	Token string `json:"token"`
}

// parseEnqueue decodes an EnqueuePage body into the sender's page number and
// the cursors it enqueues, refusing what the contract does not allow.
func parseEnqueue(raw json.RawMessage) (sender int64, cursors []string, err error) {
	var b enqueueBody
	if err := strictUnmarshal(raw, &b); err != nil {
		return 0, nil, err
	}
	switch {
	case b.Number < 1:
		return 0, nil, fmt.Errorf("number is %d: it must be the sending page's number plus one", b.Number)
	case b.Cursor != nil && b.Cursors != nil:
		return 0, nil, errors.New("both cursor and cursors are set: send one form")
	case b.Cursor != nil:
		cursors = []string{*b.Cursor}
	case len(b.Cursors) == 0:
		return 0, nil, errors.New("neither cursor nor cursors is set")
	case len(b.Cursors) > MaxLookahead:
		return 0, nil, fmt.Errorf("%d cursors: at most %d", len(b.Cursors), MaxLookahead)
	default:
		cursors = b.Cursors
	}
	total := 0
	for i, c := range cursors {
		if len(c) > MaxCursorBytes {
			return 0, nil, fmt.Errorf("cursor %d is %d bytes, over the %d-byte limit", i, len(c), MaxCursorBytes)
		}
		total += len(c)
	}
	if total > processor.MaxEnqueueBytes {
		return 0, nil, fmt.Errorf("cursors are %d bytes together, over the %d-byte limit", total, processor.MaxEnqueueBytes)
	}
	return b.Number - 1, cursors, nil
}

// onEnqueueSignal accepts a frontier's successors and counts everything else.
//
// A job with an enqueue token rejects a signal that does not carry it, before
// anything else: it enqueues nothing. It still counts as a refusal for the
// page it names: a frontier page whose processor does not send the token (a
// worker library older than the operator) would otherwise complete without
// successors and end its chain with data left. A sender outside the job can
// at worst turn a chain's real end into a visible ChainBroken that a re-drive
// mends, never into an end that skips data. Runs without a token (started
// before tokens, or continued from such a run) accept every signal as before;
// a run's input never changes within its history, so the check needs no
// workflow.GetVersion. The body of a signal to a job with a token is never
// logged: it may hold the token.
func (o *orchestrator) onEnqueueSignal(raw json.RawMessage) {
	// What the sender claims, if the body can be read: whose signal it
	// is and its token.
	var claim struct {
		Number int64  `json:"number"`
		Token  string `json:"token"`
	}
	readable := json.Unmarshal(raw, &claim) == nil
	want := o.in.EnqueueToken
	if want != "" && readable && claim.Token != want {
		o.st.Counters.RejectedSignals++
		o.logger.Warn("Rejecting EnqueuePage signal without the job's enqueue token: it is not from one of the job's pages, or from a processor whose SDK does not send the token", "Page", claim.Number, "HasToken", claim.Token != "")
		if claim.Number >= 1 {
			o.refuse(claim.Number-1, "the signal did not carry the job's enqueue token: the worker's processor library predates enqueue tokens (upgrade it), or the signal came from outside the job")
		}
		return
	}
	sender, cursors, err := parseEnqueue(raw)
	if err != nil {
		o.st.Counters.MalformedSignals++
		if want == "" {
			o.logger.Warn("Ignoring malformed EnqueuePage signal", "Body", truncate(string(raw), MaxMessageBytes), "Error", err)
		} else {
			o.logger.Warn("Ignoring malformed EnqueuePage signal", "Page", claim.Number, "Error", err)
		}
		// Whose signal it was, if the number can be read: a frontier whose
		// successors were refused must not end its chain.
		if readable && claim.Number >= 1 {
			o.refuse(claim.Number-1, err.Error())
		}
		return
	}
	o.enqueue(sender, cursors, "signal")
}

func (o *orchestrator) onDesiredSignal(raw json.RawMessage) {
	var d DesiredState
	if err := strictUnmarshal(raw, &d); err != nil {
		o.st.Counters.MalformedSignals++
		o.logger.Warn("Ignoring malformed desired state", "Body", truncate(string(raw), MaxMessageBytes), "Error", err)
		return
	}
	if err := d.Validate(); err != nil {
		o.st.Counters.MalformedSignals++
		o.logger.Warn("Ignoring invalid desired state", "Error", err)
		return
	}
	o.applyDesired(d)
}

func (o *orchestrator) applyDesired(d DesiredState) {
	cur := o.st.Applied
	if d.Generation < cur.Generation {
		o.logger.Info("Ignoring stale desired state", "Generation", d.Generation, "Applied", cur.Generation)
		return
	}
	// The ramp starts over when it changes and on resume, so a resumed job
	// does not hit downstream systems at full parallelism at once.
	if !equalRampUp(d.RampUp, cur.RampUp) || (cur.Suspend && !d.Suspend) {
		o.st.RampStart = o.now
	}
	if d.Generation != cur.Generation || d.Parallelism != cur.Parallelism || d.Suspend != cur.Suspend {
		o.logger.Info("Applied desired state", "Generation", d.Generation, "Parallelism", d.Parallelism, "Suspend", d.Suspend)
	}
	oldRetry := o.retry()
	o.st.Applied = d
	if !reflect.DeepEqual(oldRetry, o.retry()) {
		// Stuck pages wait for the new stuckPageRetryInterval, counted
		// from now, and then run with the new policy.
		o.st.StuckRetryAt = nil
		o.logger.Info("Applied retry policy", "Generation", d.Generation, "MaximumAttempts", o.retry().MaximumAttempts, "StuckPageRetryInterval", o.retry().StuckPageRetryInterval)
	}
	o.checkMaxFailed()
	o.dirty = true
}

func (o *orchestrator) onRedriveSignal(raw json.RawMessage) {
	var r RedriveRequest
	err := strictUnmarshal(raw, &r)
	if err == nil && o.unknownOutcomes && len(r.ID) > MaxRedriveIDBytes {
		err = fmt.Errorf("id is %d bytes, over the %d-byte limit", len(r.ID), MaxRedriveIDBytes)
	}
	if err != nil || r.ID == "" {
		o.st.Counters.MalformedSignals++
		o.logger.Warn("Ignoring malformed re-drive request", "Body", truncate(string(raw), MaxMessageBytes), "Error", err)
		return
	}
	o.redrive(r)
}

// redrive re-queues failed and stuck pages, and broken chains' frontiers,
// with a fresh retry budget; pages whose outcome is unknown only when the
// request includes them. Each request ID acts once.
func (o *orchestrator) redrive(r RedriveRequest) {
	if r.ID == o.st.LastRedrive || (o.unknownOutcomes && slices.Contains(o.st.Redrives, r.ID)) {
		return
	}
	o.st.LastRedrive = r.ID
	if o.unknownOutcomes {
		o.st.Redrives = append(o.st.Redrives, r.ID)
		if n := len(o.st.Redrives); n > MaxRememberedRedrives {
			o.st.Redrives = slices.Clone(o.st.Redrives[n-MaxRememberedRedrives:])
		}
	}
	n := len(o.st.Parked)
	o.requeueParked("", r.IncludeUnknown || !o.unknownOutcomes)
	left := map[int64]bool{}
	for _, p := range o.st.Parked {
		left[p.Number] = true
	}
	for i := range o.st.Chains {
		if left[o.st.Chains[i].Frontier] {
			continue // its frontier's outcome is unknown: still broken
		}
		o.st.Chains[i].Broken = false
		o.st.Chains[i].Refused = ""
	}
	o.st.StuckRetryAt = nil
	o.logger.Info("Re-drive", "ID", r.ID, "Pages", n-len(o.st.Parked), "UnknownOutcomeKept", len(o.st.Parked))
	o.dirty = true
}

// requeueParked moves parked pages in the given state ("" = all) to the
// front of the queue, oldest page first; chains' frontiers among them go
// ahead of the other waiting frontiers. Pages whose outcome is unknown stay
// parked unless includeUnknown.
func (o *orchestrator) requeueParked(state PageState, includeUnknown bool) {
	var keep []ParkedPage
	var again, frontiers []Page
	for _, p := range o.st.Parked {
		if p.OutcomeUnknown && !includeUnknown {
			keep = append(keep, p)
			continue
		}
		// A page run again after it got stuck or failed gets a fresh
		// retry budget.
		p.Attempts = 0
		_, frontier := o.frontierOf[p.Number]
		switch {
		case state != "" && p.State != state:
			keep = append(keep, p)
		case frontier && o.version >= versionLookahead:
			frontiers = append(frontiers, p.Page)
		default:
			again = append(again, p.Page)
		}
	}
	o.st.Parked = keep
	o.st.Pending = append(again, o.st.Pending...)
	o.st.Frontiers = append(frontiers, o.st.Frontiers...)
	o.dirty = true
}

// strictUnmarshal decodes a signal body, rejecting unknown fields so that a
// message meant for another signal is not half-applied.
func strictUnmarshal(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v) //workflowcheck:ignore decoding JSON is deterministic
}
