package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/temporal-batch/temporal-batch/internal/examples"
)

func TestSeedSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.db")
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"seed-sqlite", "--database", path, "--rows", "7", "--price-cents", "250"}, io.Discard, &stderr); code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	db, err := examples.OpenDatabase(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var count, total int64
	if err := db.QueryRow(`SELECT COUNT(*), SUM(price_cents) FROM products WHERE migrated = 0`).Scan(&count, &total); err != nil {
		t.Fatal(err)
	}
	if count != 7 || total != 7*250 {
		t.Errorf("seeded %d unmigrated products worth %d cents, want 7 worth %d", count, total, 7*250)
	}
}

func TestSplitSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.db")
	if err := examples.SeedProducts(context.Background(), path, 9, 100); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"split-sqlite", "--database", path, "--chains", "3"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	var cursors []string
	if err := json.Unmarshal(stdout.Bytes(), &cursors); err != nil {
		t.Fatalf("output %q is not a JSON array of cursors: %v", stdout.String(), err)
	}
	if want := []string{":3", "3:6", "6"}; !slices.Equal(cursors, want) {
		t.Errorf("cursors %q, want %q", cursors, want)
	}

	missing := filepath.Join(t.TempDir(), "missing.db")
	stderr.Reset()
	if code := run(context.Background(), []string{"split-sqlite", "--database", missing, "--chains", "3"}, io.Discard, &stderr); code != 1 {
		t.Errorf("exit code %d for a missing database, want 1", code)
	}
	if !strings.Contains(stderr.String(), "seed-sqlite") {
		t.Errorf("stderr %q does not point at seed-sqlite", stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown command", args: []string{"migrate"}, want: `unknown command "migrate"`},
		{name: "seed without database", args: []string{"seed-sqlite", "--rows", "3"}, want: "--database is required"},
		{name: "seed without rows", args: []string{"seed-sqlite", "--database", "x.db"}, want: "--rows is required"},
		{name: "seed with bad flag", args: []string{"seed-sqlite", "--rows", "many"}, want: "invalid value"},
		{name: "split without database", args: []string{"split-sqlite", "--chains", "3"}, want: "--database is required"},
		{name: "split without chains", args: []string{"split-sqlite", "--database", "x.db"}, want: "--chains is required"},
		{name: "split into too many chains", args: []string{"split-sqlite", "--database", "x.db", "--chains", "1001"}, want: "1..1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(context.Background(), tc.args, io.Discard, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.want)
			}
		})
	}
}
