package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// snapshot is what the progress display shows of a job at one moment. It is
// computed from the BatchJob's status alone (plus the local worker count),
// so any watcher of BatchJobs can render it.
type snapshot struct {
	Elapsed              time.Duration
	Phase                string
	ItemsProcessed       int64
	ItemsFailed          int64
	ItemsTotal           int64
	PagesCompleted       int64
	PagesInFlight        int64
	PagesFailed          int64
	ParallelismEffective int32
	ParallelismDesired   int32
	WorkerProcesses      int
	ItemsPerSecond       float64
}

func snapshotOf(job *batchv1alpha1.BatchJob, total int64, workers int, elapsed time.Duration) snapshot {
	st := job.Status
	phase := string(st.Phase)
	if phase == "" {
		phase = "Pending"
	}
	ips, _ := strconv.ParseFloat(st.ItemsPerSecond, 64)
	desired := st.Parallelism.Desired
	if desired == 0 && job.Spec.Parallelism != nil {
		desired = *job.Spec.Parallelism
	}
	return snapshot{
		Elapsed:              elapsed,
		Phase:                phase,
		ItemsProcessed:       st.Items.Processed,
		ItemsFailed:          st.Items.Failed,
		ItemsTotal:           total,
		PagesCompleted:       st.Pages.Completed,
		PagesInFlight:        st.Pages.InFlight,
		PagesFailed:          st.Pages.Failed,
		ParallelismEffective: st.Parallelism.Effective,
		ParallelismDesired:   desired,
		WorkerProcesses:      workers,
		ItemsPerSecond:       ips,
	}
}

// Done is the share of the items processed or failed.
func (s snapshot) Done() float64 {
	if s.ItemsTotal <= 0 {
		return 0
	}
	return float64(s.ItemsProcessed+s.ItemsFailed) / float64(s.ItemsTotal)
}

func (s snapshot) String() string {
	failed := ""
	if s.ItemsFailed > 0 {
		failed = fmt.Sprintf(" +%s failed", count(s.ItemsFailed))
	}
	return fmt.Sprintf("%s %-9s items %s/%s%s (%.0f%%) | pages %s done, %d in flight | parallelism %d/%d | worker processes %d | %s items/s",
		clock(s.Elapsed), s.Phase, count(s.ItemsProcessed), count(s.ItemsTotal), failed, 100*s.Done(),
		count(s.PagesCompleted), s.PagesInFlight, s.ParallelismEffective, s.ParallelismDesired,
		s.WorkerProcesses, count(int64(s.ItemsPerSecond+0.5)))
}

// Short is the same in under 80 columns, for narrow terminals.
func (s snapshot) Short() string {
	return fmt.Sprintf("%s %s %s/%s %.0f%% pages %s+%d par %d/%d workers %d %s/s",
		clock(s.Elapsed), s.Phase, count(s.ItemsProcessed+s.ItemsFailed), count(s.ItemsTotal), 100*s.Done(),
		count(s.PagesCompleted), s.PagesInFlight, s.ParallelismEffective, s.ParallelismDesired,
		s.WorkerProcesses, count(int64(s.ItemsPerSecond+0.5)))
}

// progressView shows a running job. It is all the demo knows of the
// display, so another view (a watch view of the kubectl plugin, say) can
// take its place.
type progressView interface {
	// Update shows the job's latest state.
	Update(snapshot)
	// Note prints a message about the run.
	Note(format string, args ...any)
	// Close ends the display, leaving the last state shown.
	Close()
}

// newProgressView rewrites one line in place on a terminal and prints a line
// every 2 seconds elsewhere (CI logs, files, pipes).
func newProgressView(out *os.File) progressView {
	if st, err := out.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		return &terminalView{out: out, fd: out.Fd()}
	}
	return &lineView{out: out, every: 2 * time.Second}
}

// terminalView keeps the progress on the terminal's last line.
type terminalView struct {
	out  io.Writer
	fd   uintptr
	last string
}

func (v *terminalView) Update(s snapshot) {
	// A line longer than the terminal wraps, and \r then rewrites only its
	// last part.
	width := terminalWidth(v.fd)
	v.last = s.String()
	if len(v.last) >= width {
		v.last = s.Short()
	}
	if len(v.last) >= width {
		v.last = v.last[:width-1]
	}
	fmt.Fprint(v.out, "\r"+v.last+"\x1b[K")
}

func (v *terminalView) Note(format string, args ...any) {
	fmt.Fprintf(v.out, "\r\x1b[K"+format+"\n", args...)
	if v.last != "" {
		fmt.Fprint(v.out, v.last)
	}
}

func (v *terminalView) Close() {
	if v.last != "" {
		fmt.Fprintln(v.out)
	}
}

// lineView prints a plain line at most every interval, and on phase changes.
type lineView struct {
	out       io.Writer
	every     time.Duration
	printed   time.Time
	lastPhase string
	pending   *snapshot
}

func (v *lineView) Update(s snapshot) {
	if time.Since(v.printed) < v.every && s.Phase == v.lastPhase {
		v.pending = &s
		return
	}
	fmt.Fprintln(v.out, s.String())
	v.printed, v.lastPhase, v.pending = time.Now(), s.Phase, nil
}

func (v *lineView) Note(format string, args ...any) {
	fmt.Fprintf(v.out, format+"\n", args...)
}

func (v *lineView) Close() {
	if v.pending != nil {
		fmt.Fprintln(v.out, v.pending.String())
		v.pending = nil
	}
}

// terminalWidth is the width of the terminal on fd, 80 when unknown.
func terminalWidth(fd uintptr) int {
	var ws struct{ Row, Col, X, Y uint16 }
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(syscall.TIOCGWINSZ), uintptr(unsafe.Pointer(&ws)))
	if errno != 0 || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}

// count formats n with thousands separators: 50,000.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// clock formats a duration as m:ss.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
