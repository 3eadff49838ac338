package controller

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	credentialEnv := []string{processor.EnvTLSCertFile, processor.EnvTLSKeyFile, processor.EnvTLSCAFile, processor.EnvAPIKey, processor.EnvTLSServerName}

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
			name: "job name too long for a label value",
			job:  workerJob(func(j *batchv1alpha1.BatchJob) { j.Name = strings.Repeat("n", 64) }),
			conn: workerConn,
			check: func(t *testing.T, d *appsv1.Deployment) {
				require.Equal(t, strings.Repeat("n", 64)+"-workers", d.Name)
				require.NotContains(t, d.Spec.Template.Labels, labelJobName)
				require.Equal(t, uid, d.Spec.Template.Labels[labelJobUID])
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
					require.Empty(t, c.VolumeMounts, "container %s", c.Name)
				}
				env := envMap(t, cs[0].Env)
				require.Equal(t, "debug", env["LOG_LEVEL"].Value)
				require.Equal(t, "db", env["DATABASE_URL"].ValueFrom.SecretKeyRef.Name)
				require.Len(t, cs[0].Env, len(injected)+2)
				require.Len(t, cs[1].Env, len(injected))
				require.Equal(t, []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
					d.Spec.Template.Spec.Volumes)
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
				require.Len(t, vols, 2)
				require.Equal(t, "scratch", vols[0].Name)
				require.Equal(t, credentialsVolume, vols[1].Name)
				require.NotNil(t, vols[1].Secret)
				require.Equal(t, "temporal-cloud", vols[1].Secret.SecretName)
				require.NotNil(t, vols[1].Secret.Optional)
				require.True(t, *vols[1].Secret.Optional, "a Secret with only some of the keys is fine")

				for _, c := range d.Spec.Template.Spec.Containers {
					require.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: credentialsVolume, MountPath: credentialsPath, ReadOnly: true}, "container %s", c.Name)
					env := envMap(t, c.Env)
					require.Equal(t, "batch.a1b2c.tmprl.cloud:7233", env[processor.EnvAddress].Value)
					require.Equal(t, "batch.a1b2c", env[processor.EnvNamespace].Value)
					require.Equal(t, credentialsPath+"/tls.crt", env[processor.EnvTLSCertFile].Value)
					require.Equal(t, credentialsPath+"/tls.key", env[processor.EnvTLSKeyFile].Value)
					require.Equal(t, credentialsPath+"/ca.crt", env[processor.EnvTLSCAFile].Value)
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
				require.Len(t, d.Spec.Template.Spec.Volumes, 1)
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
