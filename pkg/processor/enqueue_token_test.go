package processor_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
	"github.com/temporal-batch/temporal-batch/pkg/processor/processortest"
)

// EnqueueNext sends the job's enqueue token with its signal, in either form;
// a job without one gets a signal without the field, as before.
func TestEnqueueNextSendsTheJobsToken(t *testing.T) {
	const token = "4MXJ7ZQHT2C5VN3K6PWD8RBYGA"
	tests := []struct {
		name    string
		token   string
		cursors []string
		want    any
	}{
		{"one cursor", token, []string{"b"}, processor.EnqueuePage{Number: 8, Cursor: "b", Token: token}},
		{"a batch", token, []string{"b", "c"}, processor.EnqueuePageBatch{Number: 8, Cursors: []string{"b", "c"}, Token: token}},
		{"no token", "", []string{"b"}, processor.EnqueuePage{Number: 8, Cursor: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := 0
			env := processortest.New(enqueueing(&asked, tt.cursors...))
			in := withLookahead(pageInput(7, "a", ""), 2)
			in.EnqueueToken = tt.token
			if _, err := env.Execute(in); err != nil {
				t.Fatal(err)
			}
			signals := env.Signals()
			if len(signals) != 1 || !reflect.DeepEqual(signals[0].Arg, tt.want) {
				t.Fatalf("signals = %+v, want one with body %#v", signals, tt.want)
			}
			raw, err := json.Marshal(signals[0].Arg)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(raw), `"token"`); got != (tt.token != "") {
				t.Errorf("signal body %s: token field present = %v, want %v", raw, got, tt.token != "")
			}
		})
	}
}
