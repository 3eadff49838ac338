package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

var workerConn = Connection{Address: "temporal-frontend.temporal:7233", Namespace: "batch"}

// workerJob is a job whose workers run two containers, with env of their own.
func workerJob(mods ...func(*batchv1alpha1.BatchJob)) *batchv1alpha1.BatchJob {
	return planJobFixture(append([]func(*batchv1alpha1.BatchJob){func(j *batchv1alpha1.BatchJob) {
		j.Spec.Worker = &batchv1alpha1.WorkerSpec{PagesPerPod: 4, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "pricing"}, Annotations: map[string]string{"prometheus.io/scrape": "true"}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{
					{Name: "worker", Image: "example/worker:1", Env: []corev1.EnvVar{
						{Name: "LOG_LEVEL", Value: "debug"},
						{Name: processor.EnvAddress, Value: "localhost:7233"},
						{Name: "DATABASE_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "url",
						}}},
						{Name: processor.EnvTaskQueue, Value: "somewhere-else"},
					}},
					{Name: "sidecar", Image: "example/sidecar:1"},
				},
				Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}}
	}}, mods...)...)
}

func envMap(t *testing.T, env []corev1.EnvVar) map[string]corev1.EnvVar {
	t.Helper()
	m := map[string]corev1.EnvVar{}
	for _, e := range env {
		_, dup := m[e.Name]
		require.False(t, dup, "env %s set twice", e.Name)
		m[e.Name] = e
	}
	return m
}

func TestWorkerDeployment(t *testing.T) {
	const uid = "7d3c2a10-5b1f-4f0e-9a52-1c2d3e4f5a6b"
	injected := map[string]string{
		processor.EnvAddress:     "temporal-frontend.temporal:7233",
		processor.EnvNamespace:   "batch",
		processor.EnvTaskQueue:   "inflate-prices",
		processor.EnvPagesPerPod: "4",
		processor.EnvJob:         "shop/inflate-prices",
	}
	credentialEnv := []string{processor.EnvTLSCertFile, processor.EnvTLSKeyFile, processor.EnvTLSCAFile, processor.EnvAPIKey, processor.EnvTLSServerName, processor.EnvTLSFilesOptional}

	tests := []struct {
		name  string
		job   *batchv1alpha1.BatchJob
		conn  Connection
		check func(t *testing.T, d *appsv1.Deployment)
	}{
		{
			name: "name, owner labels and selector",
			job:  workerJob(),
			conn: workerConn,
			check: func(t *testing.T, d *appsv1.Deployment) {
				require.Equal(t, "inflate-prices-workers", d.Name)
				require.Equal(t, "shop", d.Namespace)
				require.Equal(t, uid, d.Labels[labelJobUID])
				require.Equal(t, map[string]string{labelJobUID: uid}, d.Spec.Selector.MatchLabels)
				for k, v := range d.Spec.Selector.MatchLabels {
					require.Equal(t, v, d.Spec.Template.Labels[k], "the template must match the selector")
				}
				require.Equal(t, "pricing", d.Spec.Template.Labels["team"], "the template's own labels stay")
				require.Equal(t, "inflate-prices", d.Spec.Template.Labels[labelJobName])
				require.Equal(t, "true", d.Spec.Template.Annotations["prometheus.io/scrape"])
				require.Nil(t, d.Spec.Replicas, "replicas are the plan's to set")
			},
		},
		{
			// A rollout keeps a poller for every slot: the new pod is up
			// before an old one stops and holds its pages to the end.
			name: "rolls out new pods before old ones stop",
			job:  workerJob(),
			conn: workerConn,
			check: func(t *testing.T, d *appsv1.Deployment) {
				require.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, d.Spec.Strategy.Type)
				require.Equal(t, intstr.FromInt32(0), *d.Spec.Strategy.RollingUpdate.MaxUnavailable)
				require.Equal(t, intstr.FromString("25%"), *d.Spec.Strategy.RollingUpdate.MaxSurge)
			},
		},
		{
			name: "job name too long for a label value",
			job:  workerJob(func(j *batchv1alpha1.BatchJob) { j.Name = strings.Repeat("n", 64) }),
			conn: workerConn,
			check: func(t *testing.T, d *appsv1.Deployment) {
				require.Equal(t, strings.Repeat("n", 64)+"-workers", d.Name)
				require.Equal(t, labelValue(strings.Repeat("n", 64)), d.Spec.Template.Labels[labelJobName])
				require.Len(t, d.Spec.Template.Labels[labelJobName], 63)
				require.Equal(t, uid, d.Spec.Template.Labels[labelJobUID])
				require.Equal(t, map[string]string{labelJobUID: uid}, d.Spec.Selector.MatchLabels)
			},
		},
		{
			name: "injected env wins over the template's, the rest stays, in every container",
			job:  workerJob(),
			conn: workerConn,
			check: func(t *testing.T, d *appsv1.Deployment) {
				cs := d.Spec.Template.Spec.Containers
				require.Len(t, cs, 2)
				for _, c := range cs {
					env := envMap(t, c.Env)
					for k, v := range injected {
						require.Equal(t, v, env[k].Value, "container %s env %s", c.Name, k)
					}
					for _, k := range credentialEnv {
						require.NotContains(t, env, k, "container %s: no credentials configured", c.Name)
					}
					require.Equal(t, []corev1.VolumeMount{{Name: tmpVolume, MountPath: "/tmp"}}, c.VolumeMounts, "container %s: only the /tmp emptyDir", c.Name)
				}
				env := envMap(t, cs[0].Env)
				require.Equal(t, "debug", env["LOG_LEVEL"].Value)
				require.Equal(t, "db", env["DATABASE_URL"].ValueFrom.SecretKeyRef.Name)
				require.Len(t, cs[0].Env, len(injected)+3, "the injected env, the template's two others and the grace period")
				require.Len(t, cs[1].Env, len(injected)+1, "the injected env and the grace period")
				require.Equal(t, []corev1.Volume{
					{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				}, d.Spec.Template.Spec.Volumes)
			},
		},
		{
			name: "pagesPerPod unset counts as 1",
			job:  workerJob(func(j *batchv1alpha1.BatchJob) { j.Spec.Worker.PagesPerPod = 0 }),
			conn: workerConn,
			check: func(t *testing.T, d *appsv1.Deployment) {
				require.Equal(t, "1", envMap(t, d.Spec.Template.Spec.Containers[0].Env)[processor.EnvPagesPerPod].Value)
			},
		},
		{
			name: "credentials secret: volume, mount and env in every container",
			job:  workerJob(),
			conn: Connection{Address: "batch.a1b2c.tmprl.cloud:7233", Namespace: "batch.a1b2c", CredentialsSecret: "temporal-cloud", TLSServerName: "batch.a1b2c.tmprl.cloud"},
			check: func(t *testing.T, d *appsv1.Deployment) {
				vols := d.Spec.Template.Spec.Volumes
				require.Len(t, vols, 3)
				require.Equal(t, "scratch", vols[0].Name)
				require.Equal(t, tmpVolume, vols[1].Name)
				require.Equal(t, credentialsVolume, vols[2].Name)
				require.NotNil(t, vols[2].Secret)
				require.Equal(t, "temporal-cloud", vols[2].Secret.SecretName)
				require.NotNil(t, vols[2].Secret.Optional)
				require.True(t, *vols[2].Secret.Optional, "a Secret with only some of the keys is fine: the kubelet leaves the others out")
				require.Equal(t, []corev1.KeyToPath{{Key: "tls.crt", Path: "tls.crt"}, {Key: "tls.key", Path: "tls.key"}, {Key: "ca.crt", Path: "ca.crt"}},
					vols[2].Secret.Items, "the TLS files at fixed paths; the API key comes as a variable")

				for _, c := range d.Spec.Template.Spec.Containers {
					require.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: credentialsVolume, MountPath: credentialsPath, ReadOnly: true}, "container %s", c.Name)
					env := envMap(t, c.Env)
					require.Equal(t, "batch.a1b2c.tmprl.cloud:7233", env[processor.EnvAddress].Value)
					require.Equal(t, "batch.a1b2c", env[processor.EnvNamespace].Value)
					require.Equal(t, credentialsPath+"/tls.crt", env[processor.EnvTLSCertFile].Value)
					require.Equal(t, credentialsPath+"/tls.key", env[processor.EnvTLSKeyFile].Value)
					require.Equal(t, credentialsPath+"/ca.crt", env[processor.EnvTLSCAFile].Value)
					require.Equal(t, "true", env[processor.EnvTLSFilesOptional].Value, "the worker goes on without the files the Secret lacks")
					require.Equal(t, "batch.a1b2c.tmprl.cloud", env[processor.EnvTLSServerName].Value)

					key := env[processor.EnvAPIKey]
					require.Empty(t, key.Value, "the API key is never written into the Deployment")
					require.NotNil(t, key.ValueFrom)
					require.NotNil(t, key.ValueFrom.SecretKeyRef)
					require.Equal(t, "temporal-cloud", key.ValueFrom.SecretKeyRef.Name)
					require.Equal(t, "api-key", key.ValueFrom.SecretKeyRef.Key)
					require.NotNil(t, key.ValueFrom.SecretKeyRef.Optional)
					require.True(t, *key.ValueFrom.SecretKeyRef.Optional)
				}
			},
		},
		{
			name: "server name without credentials secret",
			job:  workerJob(),
			conn: Connection{Address: "temporal:7233", Namespace: "batch", TLSServerName: "temporal.internal"},
			check: func(t *testing.T, d *appsv1.Deployment) {
				env := envMap(t, d.Spec.Template.Spec.Containers[0].Env)
				require.Equal(t, "temporal.internal", env[processor.EnvTLSServerName].Value)
				require.NotContains(t, env, processor.EnvAPIKey)
				require.NotContains(t, env, processor.EnvTLSFilesOptional)
				require.Len(t, d.Spec.Template.Spec.Volumes, 2, "scratch and /tmp, no credentials")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.job.DeepCopy()
			d, hash := workerDeployment(tc.job, tc.conn)
			require.NotEmpty(t, hash)
			require.Equal(t, before, tc.job, "workerDeployment must not change the job's template")
			tc.check(t, d)

			again, hashAgain := workerDeployment(tc.job, tc.conn)
			require.Equal(t, d, again, "the same job gives the same Deployment")
			require.Equal(t, hash, hashAgain)
		})
	}
}

func TestMergeEnv(t *testing.T) {
	injected := []corev1.EnvVar{{Name: "A", Value: "injected-a"}, {Name: "B", Value: "injected-b"}}
	tests := []struct {
		name string
		user []corev1.EnvVar
		want []corev1.EnvVar
	}{
		{name: "no user env", user: nil, want: injected},
		{
			name: "user env kept",
			user: []corev1.EnvVar{{Name: "X", Value: "x"}, {Name: "Y", Value: "y"}},
			want: []corev1.EnvVar{{Name: "A", Value: "injected-a"}, {Name: "B", Value: "injected-b"}, {Name: "X", Value: "x"}, {Name: "Y", Value: "y"}},
		},
		{
			name: "same name: injected wins",
			user: []corev1.EnvVar{{Name: "B", Value: "user-b"}, {Name: "X", Value: "x"}, {Name: "A", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
			}}},
			want: []corev1.EnvVar{{Name: "A", Value: "injected-a"}, {Name: "B", Value: "injected-b"}, {Name: "X", Value: "x"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, mergeEnv(tc.user, injected))
		})
	}
}

func TestTemplateHash(t *testing.T) {
	base := workerJob()
	baseHash := func() string { _, h := workerDeployment(base, workerConn); return h }()

	tests := []struct {
		name    string
		job     func(*batchv1alpha1.BatchJob)
		conn    Connection
		changed bool
	}{
		{name: "nothing changed", job: func(*batchv1alpha1.BatchJob) {}, conn: workerConn},
		{
			name: "parallelism, suspend, rate limit and status changed",
			job: func(j *batchv1alpha1.BatchJob) {
				j.Generation = 9
				j.Spec.Parallelism = ptr[int32](40)
				j.Spec.Suspend = true
				j.Spec.RateLimit = &batchv1alpha1.RateLimitSpec{PagesPerSecond: "3"}
				j.Status.Phase = batchv1alpha1.PhaseRunning
				j.Status.Parallelism.Effective = 40
				j.Status.Workers = &batchv1alpha1.WorkerStatus{Replicas: 10, ReadyReplicas: 10}
			},
			conn: workerConn,
		},
		{
			name: "image changed",
			job:  func(j *batchv1alpha1.BatchJob) { j.Spec.Worker.Template.Spec.Containers[0].Image = "example/worker:2" },
			conn: workerConn, changed: true,
		},
		{
			name: "user env changed",
			job: func(j *batchv1alpha1.BatchJob) {
				j.Spec.Worker.Template.Spec.Containers[0].Env[0].Value = "info"
			},
			conn: workerConn, changed: true,
		},
		{
			name: "resources changed",
			job: func(j *batchv1alpha1.BatchJob) {
				j.Spec.Worker.Template.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
			},
			conn: workerConn, changed: true,
		},
		{
			name: "template annotation changed",
			job: func(j *batchv1alpha1.BatchJob) {
				j.Spec.Worker.Template.Annotations["prometheus.io/scrape"] = "false"
			},
			conn: workerConn, changed: true,
		},
		{
			name: "page timeout changed: the workers' grace period follows it",
			job: func(j *batchv1alpha1.BatchJob) {
				j.Spec.Processor.Timeout = &metav1.Duration{Duration: 2 * time.Minute}
			},
			conn: workerConn, changed: true,
		},
		{
			name:    "operator's Temporal address changed",
			job:     func(*batchv1alpha1.BatchJob) {},
			conn:    Connection{Address: "temporal-frontend.temporal:7234", Namespace: "batch"},
			changed: true,
		},
		{
			name:    "credentials secret configured",
			job:     func(*batchv1alpha1.BatchJob) {},
			conn:    Connection{Address: workerConn.Address, Namespace: workerConn.Namespace, CredentialsSecret: "temporal-cloud"},
			changed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := base.DeepCopy()
			tc.job(job)
			_, h := workerDeployment(job, tc.conn)
			if tc.changed {
				require.NotEqual(t, baseHash, h)
			} else {
				require.Equal(t, baseHash, h)
			}
		})
	}
}

func TestWorkerSecurityDefaults(t *testing.T) {
	restricted := func() *corev1.SecurityContext {
		return &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			ReadOnlyRootFilesystem:   ptr(true),
		}
	}
	restrictedPod := func() *corev1.PodSecurityContext {
		return &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}
	tmpMount := corev1.VolumeMount{Name: tmpVolume, MountPath: "/tmp"}
	tmp := corev1.Volume{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}

	tests := []struct {
		name string
		spec corev1.PodSpec
		// want is the pod spec generated, without the injected env.
		want corev1.PodSpec
	}{
		{
			name: "template without a security context",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}}},
			want: corev1.PodSpec{
				AutomountServiceAccountToken: ptr(false),
				SecurityContext:              restrictedPod(),
				Containers:                   []corev1.Container{{Name: "worker", SecurityContext: restricted(), VolumeMounts: []corev1.VolumeMount{tmpMount}}},
				Volumes:                      []corev1.Volume{tmp},
			},
		},
		{
			name: "the template's own values stay, false and empty included",
			spec: corev1.PodSpec{
				AutomountServiceAccountToken: ptr(true),
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot:   ptr(false),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
				},
				Containers: []corev1.Container{
					{Name: "worker", SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr(true),
						Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}},
						ReadOnlyRootFilesystem:   ptr(false),
					}},
					{Name: "no-capability-default", SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{}}},
				},
			},
			want: corev1.PodSpec{
				AutomountServiceAccountToken: ptr(true),
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot:   ptr(false),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
				},
				Containers: []corev1.Container{
					{Name: "worker", SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr(true),
						Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}},
						ReadOnlyRootFilesystem:   ptr(false),
					}},
					{
						Name: "no-capability-default",
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{}, ReadOnlyRootFilesystem: ptr(true),
						},
						VolumeMounts: []corev1.VolumeMount{tmpMount},
					},
				},
				Volumes: []corev1.Volume{tmp},
			},
		},
		{
			name: "pod security context partly set",
			spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr[int64](10001), FSGroup: ptr[int64](10001)},
				Containers:      []corev1.Container{{Name: "worker", SecurityContext: &corev1.SecurityContext{RunAsGroup: ptr[int64](10001)}}},
			},
			want: corev1.PodSpec{
				AutomountServiceAccountToken: ptr(false),
				SecurityContext: &corev1.PodSecurityContext{
					RunAsUser: ptr[int64](10001), FSGroup: ptr[int64](10001),
					RunAsNonRoot: ptr(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				Containers: []corev1.Container{{
					Name: "worker",
					SecurityContext: &corev1.SecurityContext{
						RunAsGroup: ptr[int64](10001), AllowPrivilegeEscalation: ptr(false),
						Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, ReadOnlyRootFilesystem: ptr(true),
					},
					VolumeMounts: []corev1.VolumeMount{tmpMount},
				}},
				Volumes: []corev1.Volume{tmp},
			},
		},
		{
			name: "several containers: /tmp only where the operator made the root read-only and nothing is mounted there",
			spec: corev1.PodSpec{
				Containers: []corev1.Container{
					{Name: "plain"},
					{Name: "own-tmp", VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp/"}}},
					{Name: "read-only-by-template", SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr(true)}},
					{Name: "writable", SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr(false)}},
				},
				Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
			want: corev1.PodSpec{
				AutomountServiceAccountToken: ptr(false),
				SecurityContext:              restrictedPod(),
				Containers: []corev1.Container{
					{Name: "plain", SecurityContext: restricted(), VolumeMounts: []corev1.VolumeMount{tmpMount}},
					{Name: "own-tmp", SecurityContext: restricted(), VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp/"}}},
					{Name: "read-only-by-template", SecurityContext: restricted()},
					{Name: "writable", SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, ReadOnlyRootFilesystem: ptr(false),
					}},
				},
				Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, tmp},
			},
		},
		{
			name: "init containers, a sidecar among them, get the same defaults",
			spec: corev1.PodSpec{
				InitContainers: []corev1.Container{
					{Name: "migrate"},
					{Name: "proxy", RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways), SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr(false)}},
				},
				Containers: []corev1.Container{{Name: "worker"}},
			},
			want: corev1.PodSpec{
				AutomountServiceAccountToken: ptr(false),
				SecurityContext:              restrictedPod(),
				InitContainers: []corev1.Container{
					{Name: "migrate", SecurityContext: restricted(), VolumeMounts: []corev1.VolumeMount{tmpMount}},
					{Name: "proxy", RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways), SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, ReadOnlyRootFilesystem: ptr(false),
					}},
				},
				Containers: []corev1.Container{{Name: "worker", SecurityContext: restricted(), VolumeMounts: []corev1.VolumeMount{tmpMount}}},
				Volumes:    []corev1.Volume{tmp},
			},
		},
		{
			name: "Windows pod: only the service account token",
			spec: corev1.PodSpec{OS: &corev1.PodOS{Name: corev1.Windows}, Containers: []corev1.Container{{Name: "worker"}}},
			want: corev1.PodSpec{
				OS:                           &corev1.PodOS{Name: corev1.Windows},
				AutomountServiceAccountToken: ptr(false),
				Containers:                   []corev1.Container{{Name: "worker"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := workerJob(func(j *batchv1alpha1.BatchJob) { j.Spec.Worker.Template.Spec = tc.spec })
			before := job.DeepCopy()
			d, _ := workerDeployment(job, workerConn)
			require.Equal(t, before, job, "workerDeployment must not change the job's template")

			got := *d.Spec.Template.Spec.DeepCopy()
			got.TerminationGracePeriodSeconds = nil // TestWorkerGracePeriods
			for _, cs := range [][]corev1.Container{got.InitContainers, got.Containers} {
				for i := range cs {
					cs[i].Env = nil
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestWorkerGracePeriods(t *testing.T) {
	graceEnv := func(v string) corev1.EnvVar { return corev1.EnvVar{Name: processor.EnvGracePeriod, Value: v} }
	tests := []struct {
		name        string
		pageTimeout *metav1.Duration
		spec        corev1.PodSpec
		// wantPod is terminationGracePeriodSeconds; wantWorker the grace
		// period of each container, "" for one whose value is its own.
		wantPod    int64
		wantWorker []string
		warning    string
	}{
		{
			name:       "neither set, default page timeout: the worker waits out a page, the pod 10 s longer",
			spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}, {Name: "sidecar"}}},
			wantPod:    310,
			wantWorker: []string{"5m0s", "5m0s"},
		},
		{
			name:        "short page timeout",
			pageTimeout: &metav1.Duration{Duration: 1500 * time.Millisecond},
			spec:        corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}}},
			wantPod:     12,
			wantWorker:  []string{"1.5s"},
		},
		{
			name:        "long page timeout: the pod's grace period is capped at 10 minutes",
			pageTimeout: &metav1.Duration{Duration: 2 * time.Hour},
			spec:        corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}}},
			wantPod:     600,
			wantWorker:  []string{"9m50s"},
		},
		{
			name:       "pod grace period set: the worker's is 10 s shorter",
			spec:       corev1.PodSpec{TerminationGracePeriodSeconds: ptr[int64](120), Containers: []corev1.Container{{Name: "worker"}}},
			wantPod:    120,
			wantWorker: []string{"1m50s"},
		},
		{
			name:       "pod grace period too short for the margin: the worker still gets 1 s",
			spec:       corev1.PodSpec{TerminationGracePeriodSeconds: ptr[int64](5), Containers: []corev1.Container{{Name: "worker"}}},
			wantPod:    5,
			wantWorker: []string{"1s"},
		},
		{
			name: "worker grace period set in one container: the pod outlasts it, the other container gets the default",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "worker", Env: []corev1.EnvVar{graceEnv("15m")}},
				{Name: "sidecar"},
			}},
			wantPod:    910,
			wantWorker: []string{"", "5m0s"},
		},
		{
			name: "worker grace period from a ConfigMap: unknown, the pod's follows the page timeout",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Env: []corev1.EnvVar{{
				Name: processor.EnvGracePeriod, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "worker"}, Key: "grace"}},
			}}}}},
			wantPod:    310,
			wantWorker: []string{""},
		},
		{
			name: "both set and consistent: kept, no warning",
			spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr[int64](60), Containers: []corev1.Container{
				{Name: "worker", Env: []corev1.EnvVar{graceEnv("45s")}},
			}},
			wantPod:    60,
			wantWorker: []string{""},
		},
		{
			name: "both set, the pod's not longer: kept, with a warning naming the fix",
			spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr[int64](30), Containers: []corev1.Container{
				{Name: "worker", Env: []corev1.EnvVar{graceEnv("30s")}},
			}},
			wantPod:    30,
			wantWorker: []string{""},
			warning:    `container "worker" sets TEMPORAL_BATCH_GRACE_PERIOD=30s, not shorter than the pod's terminationGracePeriodSeconds (30): the kubelet kills the worker while its pages may still run. Set terminationGracePeriodSeconds to at least 40, or remove one of the two to have it derived from the other`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := workerJob(func(j *batchv1alpha1.BatchJob) {
				j.Spec.Processor.Timeout = tc.pageTimeout
				j.Spec.Worker.Template.Spec = tc.spec
			})
			before := job.DeepCopy()
			d, _ := workerDeployment(job, workerConn)
			require.Equal(t, before, job, "workerDeployment must not change the job's template")

			pod := d.Spec.Template.Spec
			require.NotNil(t, pod.TerminationGracePeriodSeconds)
			require.Equal(t, tc.wantPod, *pod.TerminationGracePeriodSeconds)
			require.Len(t, pod.Containers, len(tc.wantWorker))
			for i, c := range pod.Containers {
				env := envMap(t, c.Env)
				require.Contains(t, env, processor.EnvGracePeriod, "container %s", c.Name)
				if tc.wantWorker[i] == "" {
					require.Equal(t, tc.spec.Containers[i].Env[0], env[processor.EnvGracePeriod], "container %s keeps its own", c.Name)
					continue
				}
				require.Equal(t, tc.wantWorker[i], env[processor.EnvGracePeriod].Value, "container %s", c.Name)
				grace, err := time.ParseDuration(env[processor.EnvGracePeriod].Value)
				require.NoError(t, err, "the worker parses it")
				require.Less(t, grace, time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second, "container %s: the kubelet must wait longer than the worker", c.Name)
			}
			require.Equal(t, tc.warning, gracePeriodWarning(job.Spec.Worker.Template.Spec))
		})
	}
}

func TestWorkerLabelValue(t *testing.T) {
	long := strings.Repeat("a", 60) + "-b.c-" + strings.Repeat("d", 100)
	for _, name := range []string{"inflate-prices", "a", "shop.prices.v2", strings.Repeat("n", 63)} {
		require.Equal(t, name, labelValue(name), "a name that fits stays as it is, as existing workers carry it")
	}
	for _, name := range []string{
		strings.Repeat("n", 64),
		strings.Repeat("n", 253),
		long,
		strings.Repeat("a", 50) + "-.-" + strings.Repeat("z", 20), // the cut lands on "-.-"
		strings.Repeat("a", 51) + "." + strings.Repeat("z", 20),
	} {
		v := labelValue(name)
		require.Empty(t, validation.IsValidLabelValue(v), "%q from %q", v, name)
		require.LessOrEqual(t, len(v), 63)
		require.Equal(t, v, labelValue(name), "deterministic")
		require.True(t, strings.HasPrefix(name, strings.TrimSuffix(v, v[strings.LastIndex(v, "-"):])), "%q starts like %q", v, name)
	}
	require.NotEqual(t, labelValue(strings.Repeat("n", 64)), labelValue(strings.Repeat("n", 65)), "long names sharing a prefix differ")
	require.Equal(t, strings.Repeat("a", 50)+"-", labelValue(strings.Repeat("a", 50) + "-.-" + strings.Repeat("z", 20))[:51])
}
