package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// Per-job metrics, served on the manager's metrics endpoint.
var (
	itemsProcessed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "temporal_batch_job_items_processed",
		Help: "Items processed by a BatchJob, as its orchestrator reports them.",
	}, []string{"namespace", "name"})
	itemsFailed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "temporal_batch_job_items_failed",
		Help: "Items a BatchJob's processors reported failed.",
	}, []string{"namespace", "name"})
	pagesInFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "temporal_batch_job_pages_in_flight",
		Help: "Pages of a BatchJob running now.",
	}, []string{"namespace", "name"})
	pagesFailed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "temporal_batch_job_pages_failed",
		Help: "Pages of a BatchJob that failed for good.",
	}, []string{"namespace", "name"})
	effectiveParallelism = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "temporal_batch_job_parallelism_effective",
		Help: "Pages a BatchJob may have in flight now (ramp-up and suspend applied).",
	}, []string{"namespace", "name"})
	jobPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "temporal_batch_job_phase",
		Help: "1 for the phase a BatchJob is in, 0 for the others.",
	}, []string{"namespace", "name", "phase"})
	pagesUnknown = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "temporal_batch_job_pages_unknown",
		Help: "Pages of a BatchJob that failed with their outcome unknown (AtMostOnce): part of temporal_batch_job_pages_failed.",
	}, []string{"namespace", "name"})
	signalsIgnored = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "temporal_batch_job_signals_ignored",
		Help: "Signals a BatchJob's orchestrator ignored, by kind: duplicate, unexpected, malformed, rejected (no enqueue token).",
	}, []string{"namespace", "name", "kind"})
	// reconciles shows which job keeps the controller busy: an idle running
	// job should be read about once per poll interval.
	reconciles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "temporal_batch_job_reconciles_total",
		Help: "Reconcile passes of a BatchJob since the manager started.",
	}, []string{"namespace", "name"})
)

var phases = []batchv1alpha1.BatchJobPhase{batchv1alpha1.PhasePending, batchv1alpha1.PhaseRunning, batchv1alpha1.PhaseSuspended, batchv1alpha1.PhaseSucceeded, batchv1alpha1.PhaseFailed}

func init() {
	metrics.Registry.MustRegister(itemsProcessed, itemsFailed, pagesInFlight, pagesFailed, pagesUnknown, signalsIgnored, effectiveParallelism, jobPhase, reconciles)
}

func recordJobMetrics(job *batchv1alpha1.BatchJob, st batchv1alpha1.BatchJobStatus) {
	ns, name := job.Namespace, job.Name
	itemsProcessed.WithLabelValues(ns, name).Set(float64(st.Items.Processed))
	itemsFailed.WithLabelValues(ns, name).Set(float64(st.Items.Failed))
	pagesInFlight.WithLabelValues(ns, name).Set(float64(st.Pages.InFlight))
	pagesFailed.WithLabelValues(ns, name).Set(float64(st.Pages.Failed))
	pagesUnknown.WithLabelValues(ns, name).Set(float64(st.Pages.Unknown))
	var sig batchv1alpha1.SignalStatus
	if st.Signals != nil {
		sig = *st.Signals
	}
	for kind, n := range map[string]int64{"duplicate": sig.Duplicate, "unexpected": sig.Unexpected, "malformed": sig.Malformed, "rejected": sig.Rejected} {
		signalsIgnored.WithLabelValues(ns, name, kind).Set(float64(n))
	}
	effectiveParallelism.WithLabelValues(ns, name).Set(float64(st.Parallelism.Effective))
	for _, p := range phases {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		jobPhase.WithLabelValues(ns, name, string(p)).Set(v)
	}
}

func forgetJobMetrics(ns, name string) {
	labels := prometheus.Labels{"namespace": ns, "name": name}
	for _, g := range []*prometheus.GaugeVec{itemsProcessed, itemsFailed, pagesInFlight, pagesFailed, pagesUnknown, signalsIgnored, effectiveParallelism, jobPhase} {
		g.DeletePartialMatch(labels)
	}
	reconciles.DeletePartialMatch(labels)
}
