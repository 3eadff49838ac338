package batchctl

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

func jsonArgs(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

func itoa(n int) string { return strconv.Itoa(n) }

func TestDataSetSize(t *testing.T) {
	for _, tc := range []struct {
		args  string
		total int64
		sized bool
	}{
		{"", 0, false},
		{`{"percent": 3}`, 0, false},
		{`{"totalItems": 10000}`, 10000, true},
		{`{"totalItems": 0}`, 0, true},
		{`{"totalItems": 12345678901234}`, 12345678901234, true},
		{`{"totalItems": -1}`, 0, false},
		{`{"totalItems": 1.5}`, 0, false},
		{`{"totalItems": "100"}`, 0, false},
		{`[1, 2]`, 0, false},
	} {
		job := &batchv1alpha1.BatchJob{}
		if tc.args != "" {
			job.Spec.Processor.Args = jsonArgs(tc.args)
		}
		total, sized := dataSetSize(job)
		assert.Equal(t, tc.total, total, tc.args)
		assert.Equal(t, tc.sized, sized, tc.args)
	}
}

func TestProgressETA(t *testing.T) {
	p := progress{Phase: batchv1alpha1.PhaseRunning, Total: 10000, Sized: true, Processed: 4000, Failed: 0, Rate: 100, RateKnown: true}
	d, ok := p.ETA()
	assert.True(t, ok)
	assert.Equal(t, 60*time.Second, d)
	assert.Equal(t, "1m0s", p.ETAText())
	assert.Equal(t, 40, p.Percent())

	for _, tc := range []struct {
		name   string
		change func(*progress)
		want   string
	}{
		{"size unknown", func(p *progress) { p.Sized = false }, "unknown: the size of the data set is not known"},
		{"paused", func(p *progress) { p.Phase = batchv1alpha1.PhaseSuspended }, "none while paused"},
		{"no rate yet", func(p *progress) { p.RateKnown = false }, "unknown until items are processed"},
		{"rate zero", func(p *progress) { p.Rate = 0 }, "unknown until items are processed"},
		{"finished", func(p *progress) { p.Phase = batchv1alpha1.PhaseSucceeded }, "none: the job finished"},
	} {
		q := p
		tc.change(&q)
		_, ok := q.ETA()
		assert.False(t, ok, tc.name)
		assert.True(t, strings.HasPrefix(q.ETAText(), tc.want), "%s: %s", tc.name, q.ETAText())
	}

	// More items than stated (a data set that grew) caps at 100%.
	over := progress{Total: 10, Sized: true, Processed: 12}
	assert.Equal(t, 100, over.Percent())
	empty := progress{Total: 0, Sized: true}
	assert.Equal(t, 100, empty.Percent())
}

func TestBar(t *testing.T) {
	half := progress{Total: 200, Sized: true, Processed: 100}
	bar := half.Bar(20)
	assert.True(t, strings.HasPrefix(bar, "50%"), bar)
	assert.Equal(t, 10, strings.Count(bar, "█"), bar)
	assert.Equal(t, 20, strings.Count(bar, "█")+strings.Count(bar, " ")-strings.Count(strings.Split(bar, "|")[0], " "), bar)

	full := progress{Total: 200, Sized: true, Processed: 200}
	assert.True(t, strings.HasPrefix(full.Bar(20), "100%"), full.Bar(20))
	none := progress{Total: 200, Sized: true}
	assert.True(t, strings.HasPrefix(none.Bar(20), "0%"), none.Bar(20))
	assert.Empty(t, progress{}.Bar(20), "no bar without a size")
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		assert.Equal(t, want, count(n))
	}
}
