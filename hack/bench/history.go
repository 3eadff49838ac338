package main

import (
	"context"
	"encoding/json"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// eventCount is the history of a workflow over every run of its chain.
type eventCount struct {
	total  int
	byType map[enumspb.EventType]int
	// pageTime sums, over the page activities, the time from scheduled to closed.
	pageTime time.Duration
	runs     []runHistory
}

// runHistory is one run of a workflow.
type runHistory struct {
	events int
	// pages is the page activities that completed in the run.
	pages int
	// stateBytes is the size of the JSON of the state the run carried to the
	// next: the continue-as-new input's state, or the result's next state for
	// the last run; -1 when the workflow carries none (the baseline) or the
	// payload could not be read.
	stateBytes int
}

// maxStateBytes is the largest state any run carried, -1 when none is known.
func (n eventCount) maxStateBytes() int {
	m := -1
	for _, r := range n.runs {
		m = max(m, r.stateBytes)
	}
	return m
}

// countEvents reads the history of runID and of every run it continued as.
// carriesState says the workflow is the orchestrator, whose carried state is
// measured.
func countEvents(ctx context.Context, c client.Client, workflowID, runID string, carriesState bool) (eventCount, error) {
	n := eventCount{byType: map[enumspb.EventType]int{}}
	for runID != "" {
		run := runHistory{stateBytes: -1}
		next := ""
		scheduled := map[int64]time.Time{}
		it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return eventCount{}, err
			}
			n.total++
			run.events++
			n.byType[ev.GetEventType()]++
			at := ev.GetEventTime().AsTime()
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				scheduled[ev.GetEventId()] = at
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				run.pages++
				n.pageTime += at.Sub(scheduled[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()])
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
				n.pageTime += at.Sub(scheduled[ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()])
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
				n.pageTime += at.Sub(scheduled[ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()])
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
				n.pageTime += at.Sub(scheduled[ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()])
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
				attrs := ev.GetWorkflowExecutionContinuedAsNewEventAttributes()
				next = attrs.GetNewExecutionRunId()
				if carriesState {
					var in struct {
						State json.RawMessage `json:"state"`
					}
					run.stateBytes = payloadField(attrs.GetInput(), &in, &in.State)
				}
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
				if carriesState {
					var res struct {
						Next struct {
							State json.RawMessage `json:"state"`
						} `json:"next"`
					}
					run.stateBytes = payloadField(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res, &res.Next.State)
				}
			}
		}
		n.runs = append(n.runs, run)
		runID = next
	}
	return n, nil
}

// payloadField decodes the first JSON payload of ps into v and returns the
// length of *field, one of v's raw fields, as it was sent: 0 when the field
// is absent or null, -1 when the payload cannot be read.
func payloadField(ps *commonpb.Payloads, v any, field *json.RawMessage) int {
	if len(ps.GetPayloads()) == 0 {
		return -1
	}
	if err := json.Unmarshal(ps.GetPayloads()[0].GetData(), v); err != nil {
		return -1
	}
	if string(*field) == "null" {
		return 0
	}
	return len(*field)
}
