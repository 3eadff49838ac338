package temporalbatch

import "time"

// progress is the job's whole progress: the summary, the first chain's
// frontier page and the failed pages with their cursors.
func (o *orchestrator) progress() Progress {
	p := o.summary()
	p.Frontier = Page{Number: o.st.Chains[0].Frontier}
	if f, ok := o.findPage(p.Frontier.Number); ok {
		p.Frontier = f
	}
	for _, pp := range o.st.Parked {
		if pp.State == PageFailed {
			p.FailedPages = append(p.FailedPages, pp)
		}
	}
	return p
}

// summary is what the controller polls (QueryProgressSummary): the progress
// without the fields that carry cursors, which it never looks up.
func (o *orchestrator) summary() Progress {
	st := o.st
	state := o.endState
	if state == "" {
		state = StateRunning
		if st.Applied.Suspend {
			state = StateSuspended
		}
	}
	occupancy := o.occupancyWindow()
	return Progress{
		State:      state,
		Reason:     o.endReason,
		Message:    o.endMessage,
		Generation: st.Applied.Generation,
		Parallelism: ParallelismStatus{
			Desired:     st.Applied.Parallelism,
			Effective:   o.effective,
			MaxAchieved: st.Counters.MaxAchieved,
		},
		Pages: PageCounts{
			Completed: st.Counters.PagesCompleted,
			InFlight:  int64(len(o.inflight)),
			Pending:   int64(o.waiting()),
			Stuck:     int64(o.stuckCount()),
			Failed:    o.failedCount(),
			Unknown:   o.unknownCount(),
		},
		Items:            ItemCounts{Processed: st.Counters.ItemsProcessed, Failed: st.Counters.ItemsFailed},
		ItemsPerSecond:   itemsPerSecond(st.Rate, st.StartTime, st.Counters.ItemsProcessed, o.now),
		ByType:           st.ByType,
		Recent:           st.Recent,
		Chains:           o.chainCounts(),
		Lookahead:        o.lookahead(),
		Occupancy:        occupancy,
		ChainBound:       chainBound(occupancy),
		StartTime:        st.StartTime,
		CompletionTime:   o.endTime,
		LastProgressTime: lastSampleTime(st.Rate),
		Runs:             st.Runs,
		LastRedrive:      st.LastRedrive,
		Counters:         st.Counters,
		HandlerQueued:    len(st.HandlerQueue),
	}
}

func lastSampleTime(samples []RateSample) time.Time {
	if len(samples) == 0 {
		return time.Time{}
	}
	return samples[len(samples)-1].Time
}

// Occupancy: whether the slots are full, and when they are not, whether the
// chains are why. A job is chain-bound while no page waits, slots stand free
// and a frontier page is still to answer: more parallelism would change
// nothing, more lookahead or more cursors would.

// occupancyWindowLength is how long a window of the occupancy lasts; progress
// reports the last full one (or the current one once it is long enough).
const (
	occupancyWindowLength = time.Minute
	occupancyMinWindow    = 10 * time.Second
	// chainBoundFraction of a window chain-bound makes a job chain-bound.
	chainBoundFraction = 0.5
)

// occupancySample is what the slots look like between two passes of the loop.
type occupancySample struct {
	inflight, effective int
	bound               bool
}

func (o *orchestrator) sampleOccupancy() occupancySample {
	s := occupancySample{inflight: len(o.inflight), effective: o.effective}
	s.bound = s.effective > 0 && s.inflight < s.effective && o.waiting() == 0 &&
		o.asking > 0 && !o.rateLimited && !o.handlerFull()
	return s
}

// observeOccupancy adds the time since the last pass, with the slots as they
// were, to the current window.
func (o *orchestrator) observeOccupancy() {
	oc := &o.st.Occupancy
	if oc.WindowStart.IsZero() || oc.Observed.IsZero() {
		oc.WindowStart, oc.Observed = o.now, o.now
		return
	}
	dt := o.now.Sub(oc.Observed).Seconds()
	if dt <= 0 {
		return
	}
	oc.Observed = o.now
	if s := o.occupied; s.effective > 0 {
		oc.PageSeconds += float64(s.inflight) * dt
		oc.SlotSeconds += float64(s.effective) * dt
		if s.bound {
			oc.BoundSeconds += dt
		}
	}
	if o.now.Sub(oc.WindowStart) >= occupancyWindowLength {
		oc.Last = oc.window(o.now)
		oc.WindowStart, oc.PageSeconds, oc.SlotSeconds, oc.BoundSeconds = o.now, 0, 0, 0
	}
}

// window is the current window's result.
func (oc Occupancy) window(now time.Time) OccupancyWindow {
	secs := now.Sub(oc.WindowStart).Seconds()
	if secs <= 0 {
		return OccupancyWindow{}
	}
	return OccupancyWindow{
		Seconds:       secs,
		MeanInFlight:  oc.PageSeconds / secs,
		MeanEffective: oc.SlotSeconds / secs,
		BoundFraction: oc.BoundSeconds / secs,
	}
}

// occupancyWindow is the last full window, or the current one when there is
// none yet and it is long enough to say something.
func (o *orchestrator) occupancyWindow() OccupancyWindow {
	oc := o.st.Occupancy
	if oc.Last.Seconds > 0 {
		return oc.Last
	}
	if oc.WindowStart.IsZero() || oc.Observed.Sub(oc.WindowStart) < occupancyMinWindow {
		return OccupancyWindow{}
	}
	return oc.window(oc.Observed)
}

func chainBound(w OccupancyWindow) bool {
	return w.Seconds > 0 && w.BoundFraction >= chainBoundFraction
}
