package controller

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

func TestTruncate(t *testing.T) {
	require.Equal(t, "short", truncate("short", 10))
	require.Equal(t, strings.Repeat("a", 10), truncate(strings.Repeat("a", 10), 10))

	long := strings.Repeat("a", 5000)
	got := truncate(long, maxEventNote)
	require.Len(t, got, maxEventNote)
	require.True(t, strings.HasSuffix(got, ellipsis))

	// Never cuts a rune in two.
	multi := strings.Repeat("é", 1000) // 2000 bytes
	got = truncate(multi, 1023)
	require.LessOrEqual(t, len(got), 1023)
	require.True(t, utf8.ValidString(got))
	require.True(t, strings.HasSuffix(got, ellipsis))
}

func TestSetConditionTruncates(t *testing.T) {
	var st batchv1alpha1.BatchJobStatus
	msg := "pq: connection to postgres://user:secret@db:5432 failed: " + strings.Repeat("x", 4096)
	setCondition(&st, 1, batchv1alpha1.ConditionReady, metav1.ConditionFalse, batchv1alpha1.ReasonTemporalUnavailable, msg)
	c := meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionReady)
	require.NotNil(t, c)
	require.LessOrEqual(t, len(c.Message), maxConditionMessage)
	require.True(t, strings.HasSuffix(c.Message, ellipsis))
	require.True(t, strings.HasPrefix(c.Message, "pq: connection"))
}
