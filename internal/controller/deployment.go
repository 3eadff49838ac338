package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// Connection is how worker pods reach Temporal: what the operator injects.
type Connection struct {
	Address   string
	Namespace string
	// CredentialsSecret, when set, names a Secret in the job's namespace with
	// any of tls.crt, tls.key, ca.crt and api-key, mounted into worker pods.
	CredentialsSecret string
	// TLSServerName overrides the server name checked in the certificate.
	TLSServerName string
}

const (
	labelJobUID       = "batch.temporalbatch.io/job-uid"
	labelJobName      = "batch.temporalbatch.io/job"
	annotationPodSpec = "batch.temporalbatch.io/template-hash"
	credentialsVolume = "temporal-credentials"
	credentialsPath   = "/etc/temporal-batch/credentials"
	// tmpVolume is the emptyDir mounted at /tmp in the containers whose root
	// filesystem the operator makes read-only (see defaultSecurity).
	tmpVolume = "temporal-batch-tmp"
	tmpPath   = "/tmp"
)

// credentialFiles are the keys of the credentials Secret mounted as files,
// by the variable that names each.
var credentialFiles = []struct{ env, key string }{
	{processor.EnvTLSCertFile, "tls.crt"},
	{processor.EnvTLSKeyFile, "tls.key"},
	{processor.EnvTLSCAFile, "ca.crt"},
}

func workersName(job *batchv1alpha1.BatchJob) string { return job.Name + "-workers" }

// WorkerDeployments selects the worker Deployments the controller creates:
// the manager caches only these, not every Deployment of the cluster.
func WorkerDeployments() labels.Selector {
	req, err := labels.NewRequirement(labelJobUID, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant key: cannot fail
	}
	return labels.NewSelector().Add(*req)
}

// workerDeployment is the desired worker Deployment, without replicas.
func workerDeployment(job *batchv1alpha1.BatchJob, conn Connection) (*appsv1.Deployment, string) {
	tmpl := *job.Spec.Worker.Template.DeepCopy()
	selector := map[string]string{labelJobUID: string(job.UID)}
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	for k, v := range selector {
		tmpl.Labels[k] = v
	}
	tmpl.Labels["app.kubernetes.io/name"] = "temporal-batch-worker"
	tmpl.Labels["app.kubernetes.io/managed-by"] = "temporal-batch"
	tmpl.Labels[labelJobName] = labelValue(job.Name)
	defaultSecurity(&tmpl.Spec)
	env := injectedEnv(job, conn)
	if conn.CredentialsSecret != "" {
		// Optional, and so is each item: the kubelet leaves out the keys
		// the Secret does not hold, and the worker goes on without the
		// files it does not find (TEMPORAL_TLS_FILES_OPTIONAL).
		items := make([]corev1.KeyToPath, 0, len(credentialFiles))
		for _, f := range credentialFiles {
			items = append(items, corev1.KeyToPath{Key: f.key, Path: f.key})
		}
		tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{
			Name: credentialsVolume,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: conn.CredentialsSecret, Items: items, Optional: ptr(true),
			}},
		})
	}
	for i := range tmpl.Spec.Containers {
		c := &tmpl.Spec.Containers[i]
		c.Env = mergeEnv(c.Env, env)
		if conn.CredentialsSecret != "" {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: credentialsVolume, MountPath: credentialsPath, ReadOnly: true})
		}
	}
	defaultGracePeriods(&tmpl.Spec, durationOr(job.Spec.Processor.Timeout, 5*time.Minute))
	hash := templateHash(tmpl)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:      workersName(job),
			Namespace: job.Namespace,
			Labels:    map[string]string{labelJobUID: string(job.UID), "app.kubernetes.io/managed-by": "temporal-batch"},
		},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: tmpl,
			Strategy: workerStrategy(),
		},
	}
	return d, hash
}

// workerStrategy rolls a new worker template out without losing capacity:
// maxUnavailable 0 starts each new pod, and waits for it to be available,
// before an old one is asked to stop. A stopping worker no longer polls but
// holds its pages in flight until they finish (its grace period), so with
// pods stopped first the job would run below its parallelism for as long as
// a page may take. maxSurge 25% (at least one pod) bounds the extra pods,
// and the quota they need, while keeping the rollout going.
func workerStrategy() appsv1.DeploymentStrategy {
	unavailable, surge := intstr.FromInt32(0), intstr.FromString("25%")
	return appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &unavailable, MaxSurge: &surge},
	}
}

// injectedEnv is the environment every worker container gets; it wins over
// variables of the same name in the template.
func injectedEnv(job *batchv1alpha1.BatchJob, conn Connection) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: processor.EnvAddress, Value: conn.Address},
		{Name: processor.EnvNamespace, Value: conn.Namespace},
		{Name: processor.EnvTaskQueue, Value: job.Spec.TaskQueue},
		{Name: processor.EnvPagesPerPod, Value: strconv.Itoa(int(max(job.Spec.Worker.PagesPerPod, 1)))},
		{Name: processor.EnvJob, Value: job.Namespace + "/" + job.Name},
	}
	if conn.CredentialsSecret != "" {
		// The operator does not read the Secret (it has no rights to), so
		// it names every file; the worker treats a file that is absent
		// because the Secret lacks its key as not configured.
		for _, f := range credentialFiles {
			env = append(env, corev1.EnvVar{Name: f.env, Value: credentialsPath + "/" + f.key})
		}
		env = append(env,
			corev1.EnvVar{Name: processor.EnvTLSFilesOptional, Value: "true"},
			corev1.EnvVar{Name: processor.EnvAPIKey, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: conn.CredentialsSecret}, Key: "api-key", Optional: ptr(true),
			}}},
		)
	}
	if conn.TLSServerName != "" {
		env = append(env, corev1.EnvVar{Name: processor.EnvTLSServerName, Value: conn.TLSServerName})
	}
	return env
}

// labelValue makes a name usable as a label value (at most 63 characters):
// a name that fits is kept as it is, so workers of existing jobs keep their
// labels; a longer one is cut to its first characters and a hash of the
// whole name, so that it is deterministic and two long names sharing a
// prefix still differ.
func labelValue(name string) string {
	const maxLen = 63
	if len(name) <= maxLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := hex.EncodeToString(sum[:])[:10]
	// A label value ends with a letter or digit; object names start with one.
	prefix := strings.TrimRight(name[:maxLen-1-len(suffix)], "-._")
	return prefix + "-" + suffix
}

// defaultSecurity fills in a restricted security context where the template
// leaves a field unset; a value the template sets, even false or empty, is
// kept. The pod runs as non-root with the runtime's seccomp profile and no
// service account token; each container and init container gets
// allowPrivilegeEscalation: false, capabilities that drop ALL (unless it sets
// capabilities) and a read-only root filesystem. A container whose
// readOnlyRootFilesystem the operator turns on, and that mounts nothing at
// /tmp, gets an emptyDir there. Windows pods only get the token default:
// the others are Linux settings.
func defaultSecurity(spec *corev1.PodSpec) {
	if spec.AutomountServiceAccountToken == nil {
		spec.AutomountServiceAccountToken = ptr(false)
	}
	if spec.OS != nil && spec.OS.Name == corev1.Windows {
		return
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.SecurityContext.RunAsNonRoot == nil {
		spec.SecurityContext.RunAsNonRoot = ptr(true)
	}
	if spec.SecurityContext.SeccompProfile == nil {
		spec.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	needTmp := false
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			if defaultContainerSecurity(&cs[i]) {
				needTmp = true
			}
		}
	}
	if needTmp {
		spec.Volumes = append(spec.Volumes, corev1.Volume{
			Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
		})
	}
}

// defaultContainerSecurity is defaultSecurity for one container; it reports
// whether it mounted the /tmp emptyDir.
func defaultContainerSecurity(c *corev1.Container) bool {
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	sc := c.SecurityContext
	if sc.AllowPrivilegeEscalation == nil {
		sc.AllowPrivilegeEscalation = ptr(false)
	}
	if sc.Capabilities == nil {
		sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
	}
	if sc.ReadOnlyRootFilesystem != nil {
		return false
	}
	sc.ReadOnlyRootFilesystem = ptr(true)
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) == tmpPath {
			return false
		}
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: tmpVolume, MountPath: tmpPath})
	return true
}

const (
	// graceMargin is how much longer the pod's terminationGracePeriodSeconds
	// is than the worker's own grace period: the time a worker whose pages
	// outlived its grace period takes to cancel them, report them to
	// Temporal and exit before the kubelet kills it.
	graceMargin = 10 * time.Second
	// maxDerivedPodGrace caps the pod grace period derived from the page
	// timeout: ten minutes is the longest the cluster autoscaler waits for
	// the pods of a node it removes (--max-graceful-termination-sec), and a
	// page cancelled then is retried elsewhere (AtLeastOnce) or reported
	// with its outcome unknown (AtMostOnce).
	maxDerivedPodGrace = 10 * time.Minute
	// reasonGracePeriodTooShort is the Warning event of a template whose
	// pod grace period is not longer than its worker's.
	reasonGracePeriodTooShort = "GracePeriodTooShort"
)

// defaultGracePeriods makes a scale-down or a rollout drain the workers: a
// worker asked to stop (SIGTERM) stops polling and gives its pages in flight
// its grace period (TEMPORAL_BATCH_GRACE_PERIOD) to finish, and the pod's
// terminationGracePeriodSeconds must outlast it, or the kubelet's SIGKILL
// ends the pages first. The worker's grace period is derived from the pod's
// when the template sets terminationGracePeriodSeconds (graceMargin less, at
// least 1 s), else it is the page timeout, so that a page that started just
// before the stop may still finish (at most maxDerivedPodGrace less the
// margin); each container that does not set the variable gets it. A pod
// grace period the template leaves unset is the longest worker grace period
// plus graceMargin. Values the template sets are kept: gracePeriodWarning
// reports a pair that does not fit.
func defaultGracePeriods(spec *corev1.PodSpec, pageTimeout time.Duration) {
	worker := min(pageTimeout, maxDerivedPodGrace-graceMargin)
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		worker = max(time.Duration(*g)*time.Second-graceMargin, time.Second)
	}
	longest := worker
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if own, set := containerGrace(*c); set {
			longest = max(longest, own)
			continue
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: processor.EnvGracePeriod, Value: worker.String()})
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptr(int64((longest + graceMargin + time.Second - 1) / time.Second))
	}
}

// containerGrace is the worker grace period a container sets itself: set
// reports whether it names the variable at all, d is 0 when its value is not
// a literal duration (valueFrom, or invalid: the worker reports that).
func containerGrace(c corev1.Container) (d time.Duration, set bool) {
	for _, e := range c.Env {
		if e.Name != processor.EnvGracePeriod {
			continue
		}
		if e.ValueFrom == nil {
			d, _ = time.ParseDuration(strings.TrimSpace(e.Value))
		}
		return max(d, 0), true
	}
	return 0, false
}

// gracePeriodWarning says what is wrong when a template sets both the pod's
// terminationGracePeriodSeconds and a container's worker grace period, and
// the pod's is not the longer: a scale-down would kill pages the worker
// means to let finish. Empty when nothing is.
func gracePeriodWarning(spec corev1.PodSpec) string {
	if spec.TerminationGracePeriodSeconds == nil {
		return ""
	}
	pod := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	for _, c := range spec.Containers {
		if own, _ := containerGrace(c); own > 0 && own >= pod {
			want := int64((own + graceMargin + time.Second - 1) / time.Second)
			return fmt.Sprintf("container %q sets %s=%s, not shorter than the pod's terminationGracePeriodSeconds (%d): the kubelet kills the worker while its pages may still run. Set terminationGracePeriodSeconds to at least %d, or remove one of the two to have it derived from the other",
				c.Name, processor.EnvGracePeriod, own, *spec.TerminationGracePeriodSeconds, want)
		}
	}
	return ""
}

func mergeEnv(user, injected []corev1.EnvVar) []corev1.EnvVar {
	names := map[string]bool{}
	for _, e := range injected {
		names[e.Name] = true
	}
	// Injected variables come first so that the template's own may refer
	// to them as $(TEMPORAL_ADDRESS).
	out := append(make([]corev1.EnvVar, 0, len(user)+len(injected)), injected...)
	for _, e := range user {
		if !names[e.Name] {
			out = append(out, e)
		}
	}
	return out
}

// templateHash identifies a pod template, so that the Deployment is only
// updated when the template changes, not on every pass against its defaults.
func templateHash(t corev1.PodTemplateSpec) string {
	raw, _ := json.Marshal(t)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// ensureWorkers creates or updates the worker Deployment with the replicas
// and returns its status.
func (r *BatchJobReconciler) ensureWorkers(ctx context.Context, job *batchv1alpha1.BatchJob, replicas int32) (*batchv1alpha1.WorkerStatus, error) {
	desired, hash := workerDeployment(job, r.Connection)
	var cur appsv1.Deployment
	err := r.Get(ctx, types.NamespacedName{Namespace: job.Namespace, Name: desired.Name}, &cur)
	switch {
	case apierrors.IsNotFound(err):
		desired.Spec.Replicas = &replicas
		desired.Spec.Template.Annotations = withAnnotation(desired.Spec.Template.Annotations, annotationPodSpec, hash)
		desired.Annotations = withAnnotation(desired.Annotations, annotationTemplateGeneration, strconv.FormatInt(job.Generation, 10))
		if err := controllerutil.SetControllerReference(job, desired, r.Scheme); err != nil {
			return nil, err
		}
		if err := r.Create(ctx, desired); apierrors.IsAlreadyExists(err) {
			// The cache holds only Deployments with our label (see
			// WorkerDeployments): this one was created by someone else.
			return nil, fmt.Errorf("deployment %s/%s exists and is not owned by this BatchJob: rename or delete it", desired.Namespace, desired.Name)
		} else if err != nil {
			return nil, fmt.Errorf("create worker Deployment: %w", err)
		}
		r.warnGracePeriod(job)
		return &batchv1alpha1.WorkerStatus{}, nil
	case err != nil:
		return nil, err
	}
	if !metav1.IsControlledBy(&cur, job) {
		return nil, fmt.Errorf("deployment %s/%s exists and is not owned by this BatchJob: rename or delete it", cur.Namespace, cur.Name)
	}
	patch := client.MergeFrom(cur.DeepCopy())
	changed := false
	if cur.Spec.Replicas == nil || *cur.Spec.Replicas != replicas {
		cur.Spec.Replicas = &replicas
		changed = true
	}
	templateChanged := cur.Spec.Template.Annotations[annotationPodSpec] != hash
	if templateChanged {
		cur.Spec.Template = desired.Spec.Template
		cur.Spec.Template.Annotations = withAnnotation(cur.Spec.Template.Annotations, annotationPodSpec, hash)
		cur.Annotations = withAnnotation(cur.Annotations, annotationTemplateGeneration, strconv.FormatInt(job.Generation, 10))
		changed = true
	}
	if !equality.Semantic.DeepEqual(cur.Spec.Strategy, desired.Spec.Strategy) {
		// Deployments written before the strategy was set roll with the
		// default, which stops pods before their replacements are up.
		cur.Spec.Strategy = desired.Spec.Strategy
		changed = true
	}
	if changed {
		if err := r.Patch(ctx, &cur, patch); err != nil {
			return nil, fmt.Errorf("update worker Deployment: %w", err)
		}
	}
	if templateChanged {
		r.warnGracePeriod(job)
	}
	return &batchv1alpha1.WorkerStatus{Replicas: cur.Status.Replicas, ReadyReplicas: cur.Status.ReadyReplicas}, nil
}

// warnGracePeriod records a Warning event when the template's grace periods
// do not fit (see gracePeriodWarning), once per template written to the
// Deployment: the template is the user's to fix, and the workers run anyway.
func (r *BatchJobReconciler) warnGracePeriod(job *batchv1alpha1.BatchJob) {
	if msg := gracePeriodWarning(job.Spec.Worker.Template.Spec); msg != "" {
		r.Recorder.Eventf(job, nil, corev1.EventTypeWarning, reasonGracePeriodTooShort, reasonGracePeriodTooShort, "%s", truncate(msg, maxEventNote))
	}
}

func withAnnotation(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

func ptr[T any](v T) *T { return &v }
