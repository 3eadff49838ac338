package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/temporal-batch/temporal-batch/internal/examples"
)

func TestSeedSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.db")
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"seed-sqlite", "--database", path, "--rows", "7", "--price-cents", "250"}, &stderr); code != 0 {
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.want)
			}
		})
	}
}
