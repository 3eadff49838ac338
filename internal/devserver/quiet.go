package devserver

import (
	"log/slog"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/log"
)

func describeNamespace(ns string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: ns}
}

// quietLogger keeps SDK chatter out of test output; warnings and errors pass.
type quietLogger struct{}

var _ log.Logger = quietLogger{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(msg string, kv ...any) {
	log.NewStructuredLogger(slog.Default()).Warn(msg, kv...)
}
func (quietLogger) Error(msg string, kv ...any) {
	log.NewStructuredLogger(slog.Default()).Error(msg, kv...)
}
