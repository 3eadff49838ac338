package localenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ManagedByLabel selects the Deployments the runner runs: the operator's
// worker Deployments.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "temporal-batch"
)

// RunnerOptions configure a DeploymentRunner.
type RunnerOptions struct {
	// BinDir holds the binaries that stand in for images: a container whose
	// command's base name is a file here (example-worker, manager) runs that
	// file. Other commands are looked up on PATH.
	BinDir string
	// LogDir receives one log per replica, <namespace>.<deployment>-<n>.log.
	LogDir string
	// WorkDir is the working directory of the processes.
	WorkDir string
	// Interval between two passes over the Deployments; default 500ms.
	Interval time.Duration
	Logger   *slog.Logger
}

// DeploymentRunner stands in for the kubelet and the Deployment controller
// of a control plane that has neither: for every Deployment labelled
// app.kubernetes.io/managed-by=temporal-batch it runs spec.replicas local
// processes of the first container's command with the container's literal
// env, restarts those that exit, stops extras on scale-down (SIGTERM, then
// SIGKILL after terminationGracePeriodSeconds) and writes the Deployment's
// status. Standing in for the garbage collector too, it deletes such a
// Deployment once its controlling owner is gone.
//
// It ignores images, probes, volumes, resources and valueFrom env.
type DeploymentRunner struct {
	client client.Client
	opts   RunnerOptions
	logger *slog.Logger

	mu          sync.Mutex
	deployments map[types.NamespacedName]*localDeployment
	// terminating are replicas asked to stop that have not yet exited.
	terminating map[*supervised]struct{}
}

// localDeployment is the runner's state of one Deployment.
type localDeployment struct {
	uid types.UID
	// replicas by index; a stopped index is removed from the tail.
	replicas []*replica
	// problem is why the template cannot run, reported once per change.
	problem string
}

type replica struct {
	proc *supervised
	// hash identifies the template the replica runs.
	hash string
}

// NewDeploymentRunner returns a runner that reads and writes through c.
func NewDeploymentRunner(c client.Client, opts RunnerOptions) *DeploymentRunner {
	if opts.Interval <= 0 {
		opts.Interval = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogDir == "" {
		opts.LogDir = os.TempDir()
	}
	return &DeploymentRunner{
		client:      c,
		opts:        opts,
		logger:      opts.Logger.With("component", "deployment-runner"),
		deployments: map[types.NamespacedName]*localDeployment{},
		terminating: map[*supervised]struct{}{},
	}
}

// Run runs the Deployments until ctx is done, then stops every process and
// waits for them to exit.
func (r *DeploymentRunner) Run(ctx context.Context) error {
	if err := os.MkdirAll(r.opts.LogDir, 0o755); err != nil {
		return err
	}
	defer r.stopAll()
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		if err := r.pass(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("Pass over the worker Deployments failed; retrying", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Processes returns the process IDs of the running replicas of a Deployment,
// by replica index; 0 for a replica that is between restarts.
func (r *DeploymentRunner) Processes(key types.NamespacedName) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.deployments[key]
	if d == nil {
		return nil
	}
	pids := make([]int, len(d.replicas))
	for i, rep := range d.replicas {
		pids[i] = rep.proc.Pid()
	}
	return pids
}

// Running counts the processes running now, over all Deployments, including
// those that were asked to stop and are still finishing.
func (r *DeploymentRunner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, d := range r.deployments {
		for _, rep := range d.replicas {
			if rep.proc.Running() {
				n++
			}
		}
	}
	for p := range r.terminating {
		if p.Running() {
			n++
		}
	}
	return n
}

// Hurry kills every process at once, including those finishing their pages
// within their grace period, for a shutdown that cannot wait.
func (r *DeploymentRunner) Hurry() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.deployments {
		for _, rep := range d.replicas {
			rep.proc.Kill()
		}
	}
	for p := range r.terminating {
		p.Kill()
	}
}

func (r *DeploymentRunner) pass(ctx context.Context) error {
	var list appsv1.DeploymentList
	if err := r.client.List(ctx, &list, client.MatchingLabels{ManagedByLabel: ManagedByValue}); err != nil {
		return err
	}
	seen := map[types.NamespacedName]bool{}
	var firstErr error
	for i := range list.Items {
		d := &list.Items[i]
		key := client.ObjectKeyFromObject(d)
		seen[key] = true
		if err := r.sync(ctx, d); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("deployment %s: %w", key, err)
		}
	}
	r.mu.Lock()
	for key, d := range r.deployments {
		if !seen[key] {
			r.logger.Info("Deployment is gone; stopping its processes", "deployment", key)
			r.scaleLocked(key, d, 0)
			delete(r.deployments, key)
		}
	}
	r.reapLocked()
	r.mu.Unlock()
	return firstErr
}

// sync brings one Deployment's processes to its spec and writes its status.
func (r *DeploymentRunner) sync(ctx context.Context, d *appsv1.Deployment) error {
	key := client.ObjectKeyFromObject(d)
	if d.DeletionTimestamp != nil {
		r.forget(key)
		return nil
	}
	if gone, err := r.ownerGone(ctx, d); err != nil {
		return err
	} else if gone {
		r.logger.Info("Owner of the Deployment is gone; deleting it", "deployment", key)
		r.forget(key)
		return client.IgnoreNotFound(r.client.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationBackground)))
	}

	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	spec, hash, problem := r.processSpec(d)

	r.mu.Lock()
	ld := r.deployments[key]
	if ld == nil || ld.uid != d.UID {
		if ld != nil {
			// Deleted and created again under the same name.
			r.scaleLocked(key, ld, 0)
		}
		ld = &localDeployment{uid: d.UID}
		r.deployments[key] = ld
	}
	if problem != ld.problem {
		if problem != "" {
			r.logger.Error("Deployment cannot run locally", "deployment", key, "problem", problem)
		}
		ld.problem = problem
	}
	run := int(desired)
	if problem != "" {
		run = 0
	}
	// A changed template replaces the replicas that run the old one; those
	// finish their pages within their grace period meanwhile, as the pods of
	// a rolling update do.
	for i := len(ld.replicas) - 1; i >= 0; i-- {
		if ld.replicas[i].hash != hash {
			r.scaleLocked(key, ld, i)
		}
	}
	r.scaleLocked(key, ld, run)
	for i := len(ld.replicas); i < run; i++ {
		s := spec
		s.Name = fmt.Sprintf("%s-%d", d.Name, i)
		s.LogPath = filepath.Join(r.opts.LogDir, fmt.Sprintf("%s.%s-%d.log", d.Namespace, d.Name, i))
		s.Env = append(append([]string(nil), spec.Env...), "HOSTNAME="+s.Name, "POD_NAME="+s.Name, "POD_NAMESPACE="+d.Namespace)
		ld.replicas = append(ld.replicas, &replica{proc: startSupervised(s, r.logger.With("deployment", key.String())), hash: hash})
	}
	var running int32
	for _, rep := range ld.replicas {
		if rep.proc.Running() {
			running++
		}
	}
	total := int32(len(ld.replicas))
	r.mu.Unlock()

	return r.writeStatus(ctx, d, desired, total, running, problem)
}

// scaleLocked stops the replicas of index n and above.
func (r *DeploymentRunner) scaleLocked(key types.NamespacedName, ld *localDeployment, n int) {
	for len(ld.replicas) > n {
		last := ld.replicas[len(ld.replicas)-1]
		ld.replicas = ld.replicas[:len(ld.replicas)-1]
		r.logger.Info("Stopping replica", "deployment", key, "replica", len(ld.replicas), "pid", last.proc.Pid())
		last.proc.Stop()
		r.terminating[last.proc] = struct{}{}
	}
}

func (r *DeploymentRunner) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ld := r.deployments[key]; ld != nil {
		r.scaleLocked(key, ld, 0)
		delete(r.deployments, key)
	}
}

// reapLocked forgets stopped replicas that have exited.
func (r *DeploymentRunner) reapLocked() {
	for p := range r.terminating {
		select {
		case <-p.Done():
			delete(r.terminating, p)
		default:
		}
	}
}

func (r *DeploymentRunner) stopAll() {
	r.mu.Lock()
	for key, ld := range r.deployments {
		r.scaleLocked(key, ld, 0)
	}
	r.deployments = map[types.NamespacedName]*localDeployment{}
	procs := make([]*supervised, 0, len(r.terminating))
	for p := range r.terminating {
		procs = append(procs, p)
	}
	r.mu.Unlock()
	for _, p := range procs {
		<-p.Done()
	}
	r.mu.Lock()
	r.reapLocked()
	r.mu.Unlock()
}

// ownerGone reports whether the Deployment's controlling owner no longer
// exists, which is when the garbage collector would delete it.
func (r *DeploymentRunner) ownerGone(ctx context.Context, d *appsv1.Deployment) (bool, error) {
	ref := metav1.GetControllerOf(d)
	if ref == nil {
		return false, nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return false, nil
	}
	owner := &metav1.PartialObjectMetadata{}
	owner.SetGroupVersionKind(gv.WithKind(ref.Kind))
	err = r.client.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: ref.Name}, owner)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case meta.IsNoMatchError(err):
		// The owner's type is not served (its CRD is not installed): leave
		// the Deployment alone rather than guess.
		return false, nil
	case err != nil:
		return false, err
	}
	return owner.UID != ref.UID, nil
}

// processSpec turns the pod template into a local process: the first
// container's command and args, its literal env, and the pod's grace period.
// The hash changes whenever any of it does. problem is set when the template
// cannot run locally.
func (r *DeploymentRunner) processSpec(d *appsv1.Deployment) (spec processSpec, hash, problem string) {
	pod := d.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		return spec, "", "the pod template has no container"
	}
	c := pod.Containers[0]
	argv := append(append([]string(nil), c.Command...), c.Args...)
	if len(c.Command) == 0 {
		return spec, "", fmt.Sprintf("container %q sets no command: images are not run locally, so the command must name a binary of bin/ or of PATH", c.Name)
	}
	path, err := r.resolve(argv[0])
	if err != nil {
		return spec, "", fmt.Sprintf("container %q: %v", c.Name, err)
	}
	grace := 30 * time.Second
	if g := pod.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	env := baseEnv()
	names := make([]string, 0, len(c.Env))
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			continue
		}
		env = append(env, e.Name+"="+e.Value)
		names = append(names, e.Name)
	}
	spec = processSpec{Path: path, Argv0: argv[0], Args: argv[1:], Env: env, Dir: r.opts.WorkDir, Grace: grace}
	raw, _ := json.Marshal(struct {
		Path  string
		Argv  []string
		Env   []corev1.EnvVar
		Grace time.Duration
	}{path, argv, c.Env, grace})
	sum := sha256.Sum256(raw)
	return spec, hex.EncodeToString(sum[:8]), ""
}

// resolve maps a container command to a local binary: bin/<base name> when
// it exists, otherwise the command itself looked up on PATH.
func (r *DeploymentRunner) resolve(command string) (string, error) {
	if r.opts.BinDir != "" {
		p := filepath.Join(r.opts.BinDir, filepath.Base(command))
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(command)
	if err != nil {
		return "", fmt.Errorf("command %q is neither in %s nor on PATH (run `make build` for the project's binaries)", command, r.opts.BinDir)
	}
	return p, nil
}

// baseEnv is what a process gets before the container's env: enough of this
// process's environment to find programs and a home, as an image would set.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// writeStatus writes the Deployment's status through the status subresource
// when it changed. All replicas run the current template, and a running
// process counts as ready and available (there are no probes). problem, when
// set, says why no replica runs.
func (r *DeploymentRunner) writeStatus(ctx context.Context, d *appsv1.Deployment, desired, total, running int32, problem string) error {
	st := d.Status.DeepCopy()
	st.ObservedGeneration = d.Generation
	st.Replicas = total
	st.UpdatedReplicas = total
	st.ReadyReplicas = running
	st.AvailableReplicas = running
	st.UnavailableReplicas = max(desired-running, 0)
	available := corev1.ConditionFalse
	reason, msg := "MinimumReplicasUnavailable", fmt.Sprintf("%d of %d replicas run locally", running, desired)
	switch {
	case problem != "":
		reason, msg = "CannotRunLocally", problem
	case running >= desired:
		available, reason = corev1.ConditionTrue, "MinimumReplicasAvailable"
	}
	setDeploymentCondition(st, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: available, Reason: reason, Message: msg})
	if equality.Semantic.DeepEqual(*st, d.Status) {
		return nil
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Status = *st
	if err := r.client.Status().Patch(ctx, d, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// setDeploymentCondition sets a condition, keeping its transition time when
// its status did not change, and its update time when nothing did.
func setDeploymentCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	for i := range st.Conditions {
		cur := &st.Conditions[i]
		if cur.Type != c.Type {
			continue
		}
		if cur.Status == c.Status && cur.Reason == c.Reason && cur.Message == c.Message {
			return
		}
		c.LastUpdateTime = now
		c.LastTransitionTime = cur.LastTransitionTime
		if cur.Status != c.Status {
			c.LastTransitionTime = now
		}
		*cur = c
		return
	}
	c.LastUpdateTime, c.LastTransitionTime = now, now
	st.Conditions = append(st.Conditions, c)
	sort.Slice(st.Conditions, func(i, j int) bool { return st.Conditions[i].Type < st.Conditions[j].Type })
}
