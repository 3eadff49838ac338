package examples

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
	"github.com/temporal-batch/temporal-batch/pkg/processor/processortest"
)

// seededDatabase returns the path of a fresh database of rows products priced
// priceCents.
func seededDatabase(t *testing.T, rows int, priceCents int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	if err := SeedProducts(context.Background(), path, rows, priceCents); err != nil {
		t.Fatal(err)
	}
	return path
}

type productRow struct {
	PriceCents int64
	Migrated   bool
}

func readProducts(t *testing.T, path string) map[int64]productRow {
	t.Helper()
	db, err := OpenDatabase(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, price_cents, migrated FROM products`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	products := map[int64]productRow{}
	for rows.Next() {
		var id int64
		var p productRow
		if err := rows.Scan(&id, &p.PriceCents, &p.Migrated); err != nil {
			t.Fatal(err)
		}
		products[id] = p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return products
}

func migrationPage(t *testing.T, number int64, cursor string, size int, args SQLiteMigrationArgs) processor.PageInput {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return processor.PageInput{
		Job:  processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: testWorkflowID},
		Page: processor.PageRef{Number: number, Cursor: cursor, Size: size},
		Args: raw,
	}
}

func TestSQLiteMigrationPage(t *testing.T) {
	db := seededDatabase(t, 25, 1000)
	env := processortest.New(SQLiteMigration)
	res, err := env.Execute(migrationPage(t, 0, "", 10, SQLiteMigrationArgs{Database: db, Percent: 3}))
	if err != nil {
		t.Fatal(err)
	}
	if res.ItemsProcessed != 10 {
		t.Errorf("processed %d rows, want 10", res.ItemsProcessed)
	}
	if got, want := env.EnqueuedPages(), []processor.EnqueuePage{{Number: 1, Cursor: "10"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("enqueued %+v, want %+v", got, want)
	}
	for id, p := range readProducts(t, db) {
		want := productRow{PriceCents: 1000}
		if id <= 10 {
			want = productRow{PriceCents: 1030, Migrated: true}
		}
		if p != want {
			t.Errorf("product %d = %+v, want %+v", id, p, want)
		}
	}
}

// TestSQLiteMigrationRetriedPage runs a page again after it committed, as
// when the worker dies before Temporal hears of its success.
func TestSQLiteMigrationRetriedPage(t *testing.T) {
	db := seededDatabase(t, 25, 1000)
	env := processortest.New(SQLiteMigration)
	in := migrationPage(t, 1, "10", 10, SQLiteMigrationArgs{Database: db, Percent: 3})
	if _, err := env.Execute(in); err != nil {
		t.Fatal(err)
	}
	res, err := env.Retry()
	if err != nil {
		t.Fatal(err)
	}
	if res.ItemsProcessed != 10 {
		t.Errorf("retry processed %d rows, want the page's 10 rows counted again", res.ItemsProcessed)
	}
	if got := env.EnqueuedPages(); len(got) != 1 {
		t.Errorf("enqueued %+v, want the next page once", got)
	}
	for id, p := range readProducts(t, db) {
		if migrated := id > 10 && id <= 20; p.Migrated != migrated || (migrated && p.PriceCents != 1030) {
			t.Errorf("product %d = %+v after a retried page, want migrated once only if in page 1", id, p)
		}
	}
}

// TestSQLiteMigrationChain follows the chain of pages the way the
// orchestrator does, two pages at a time on the same file, and checks every
// row changed exactly once.
func TestSQLiteMigrationChain(t *testing.T) {
	for _, rows := range []int{0, 40, 47} {
		db := seededDatabase(t, rows, 999)
		args := SQLiteMigrationArgs{Database: db, Percent: 2.5}
		next := []processor.EnqueuePage{{Number: 0}}
		var processed int64
		for round := 0; len(next) > 0; round++ {
			if round > rows/10+2 {
				t.Fatalf("%d rows: chain did not end", rows)
			}
			var mu sync.Mutex
			var wg sync.WaitGroup
			var enqueued []processor.EnqueuePage
			for _, page := range next {
				// Each page also runs a retry alongside itself, as when a
				// worker lost its page and another picked it up.
				for range 2 {
					wg.Go(func() {
						env := processortest.New(SQLiteMigration)
						res, err := env.Execute(migrationPage(t, page.Number, page.Cursor, 10, args))
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							t.Errorf("%d rows, page %d: %v", rows, page.Number, err)
							return
						}
						processed += res.ItemsProcessed
						enqueued = append(enqueued, env.EnqueuedPages()...)
					})
				}
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			next = dedupe(enqueued)
		}
		if want := int64(2 * rows); processed != want {
			t.Errorf("%d rows: processed %d in total, want each row counted by both runs of its page (%d)", rows, processed, want)
		}
		products := readProducts(t, db)
		if len(products) != rows {
			t.Fatalf("%d rows: table has %d", rows, len(products))
		}
		for id, p := range products {
			// 999 * 1.025 = 1023.975
			if p != (productRow{PriceCents: 1024, Migrated: true}) {
				t.Errorf("%d rows: product %d = %+v, want migrated once to 1024", rows, id, p)
			}
		}
	}
}

// dedupe drops repeated enqueues of a page number, as the orchestrator does.
func dedupe(pages []processor.EnqueuePage) []processor.EnqueuePage {
	seen := map[int64]bool{}
	var out []processor.EnqueuePage
	for _, p := range pages {
		if !seen[p.Number] {
			seen[p.Number] = true
			out = append(out, p)
		}
	}
	return out
}

func TestSQLiteMigrationInvalidInput(t *testing.T) {
	db := seededDatabase(t, 5, 1000)
	for _, tc := range []struct {
		name     string
		args     string
		cursor   string
		wantType string
		wantText string
	}{
		{name: "no args", args: ``, wantType: "InvalidArgs", wantText: "database"},
		{name: "database missing", args: `{"percent": 3}`, wantType: "InvalidArgs", wantText: "database"},
		{name: "database does not exist", args: `{"database": "/nonexistent/shop.db", "percent": 3}`, wantType: "InvalidArgs", wantText: "seed-sqlite"},
		{name: "percent missing", args: `{"database": "` + db + `"}`, wantType: "InvalidArgs", wantText: "percent"},
		{name: "percent below -100", args: `{"database": "` + db + `", "percent": -101}`, wantType: "InvalidArgs", wantText: "percent"},
		{name: "unknown argument", args: `{"database": "` + db + `", "percent": 3, "dryRun": true}`, wantType: "InvalidArgs", wantText: "dryRun"},
		{name: "cursor not an ID", args: `{"database": "` + db + `", "percent": 3}`, cursor: "sku-1", wantType: "InvalidCursor", wantText: "sku-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := migrationPage(t, 0, tc.cursor, 10, SQLiteMigrationArgs{})
			in.Args = json.RawMessage(tc.args)
			_, err := processortest.New(SQLiteMigration).Execute(in)
			appErr := applicationError(t, err)
			if appErr.Type() != tc.wantType || !appErr.NonRetryable() {
				t.Errorf("error type %q non-retryable %t, want non-retryable %q", appErr.Type(), appErr.NonRetryable(), tc.wantType)
			}
			if !strings.Contains(appErr.Error(), tc.wantText) {
				t.Errorf("error %q does not mention %q", appErr.Error(), tc.wantText)
			}
		})
	}
	for id, p := range readProducts(t, db) {
		if p.Migrated {
			t.Errorf("invalid pages changed product %d", id)
		}
	}
}

func TestSeedProductsReplacesTable(t *testing.T) {
	db := seededDatabase(t, 5, 1000)
	if _, err := processortest.New(SQLiteMigration).Execute(migrationPage(t, 0, "", 10, SQLiteMigrationArgs{Database: db, Percent: 10})); err != nil {
		t.Fatal(err)
	}
	if err := SeedProducts(context.Background(), db, 3, 500); err != nil {
		t.Fatal(err)
	}
	want := map[int64]productRow{1: {PriceCents: 500}, 2: {PriceCents: 500}, 3: {PriceCents: 500}}
	if got := readProducts(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("products after reseeding = %+v, want %+v", got, want)
	}
}
