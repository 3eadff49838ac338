package examples

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
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
		{name: "cursor until not an ID", args: `{"database": "` + db + `", "percent": 3}`, cursor: "1:sku-9", wantType: "InvalidCursor", wantText: `"<after>:<until>"`},
		{name: "cursor until missing", args: `{"database": "` + db + `", "percent": 3}`, cursor: "1:", wantType: "InvalidCursor", wantText: `"<after>:<until>"`},
		{name: "cursor after not an ID", args: `{"database": "` + db + `", "percent": 3}`, cursor: "x:5", wantType: "InvalidCursor", wantText: `"<after>:<until>"`},
		{name: "cursor until below after", args: `{"database": "` + db + `", "percent": 3}`, cursor: "5:4", wantType: "InvalidCursor", wantText: "until 4 is below after 5"},
		{name: "cursor with two untils", args: `{"database": "` + db + `", "percent": 3}`, cursor: "1:3:5", wantType: "InvalidCursor", wantText: `"<after>:<until>"`},
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

// migratedIDs returns the IDs of the migrated products, in order.
func migratedIDs(t *testing.T, path string) []int64 {
	t.Helper()
	var ids []int64
	for id, p := range readProducts(t, path) {
		if p.Migrated {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func idRange(first, last int64) []int64 {
	var ids []int64
	for id := first; id <= last; id++ {
		ids = append(ids, id)
	}
	return ids
}

// TestSQLiteMigrationLookahead: a page enqueues as many following pages of
// its chain as it is asked for, in one signal, each at the last ID of the
// page before it, fewer near the end and none after a short page; it
// migrates its own rows only, never the rows it looked ahead at.
func TestSQLiteMigrationLookahead(t *testing.T) {
	for _, tc := range []struct {
		name         string
		rows         int
		cursor       string
		lookahead    *int
		wantCursors  []string
		wantMigrated []int64
	}{
		{name: "not the frontier", rows: 60, lookahead: lookahead(0), wantMigrated: idRange(1, 10)},
		{name: "asked for one", rows: 60, lookahead: lookahead(1), wantCursors: []string{"10"}, wantMigrated: idRange(1, 10)},
		{name: "orchestrator without lookahead", rows: 60, wantCursors: []string{"10"}, wantMigrated: idRange(1, 10)},
		{name: "asked for five", rows: 60, lookahead: lookahead(5),
			wantCursors: []string{"10", "20", "30", "40", "50"}, wantMigrated: idRange(1, 10)},
		{name: "near the end", rows: 25, lookahead: lookahead(5), wantCursors: []string{"10", "20"}, wantMigrated: idRange(1, 10)},
		{name: "asked for more than the table has", rows: 60, cursor: "30", lookahead: lookahead(1000),
			wantCursors: []string{"40", "50", "60"}, wantMigrated: idRange(31, 40)},
		// As without lookahead: a full page cannot tell that nothing follows,
		// so the last successor is an empty page that finds the end.
		{name: "full page at the end", rows: 30, cursor: "20", lookahead: lookahead(5), wantCursors: []string{"30"}, wantMigrated: idRange(21, 30)},
		{name: "short page at the end", rows: 25, cursor: "20", lookahead: lookahead(5), wantMigrated: idRange(21, 25)},
		{name: "past the end", rows: 25, cursor: "25", lookahead: lookahead(5)},
		{name: "range kept", rows: 60, cursor: "0:35", lookahead: lookahead(5),
			wantCursors: []string{"10:35", "20:35", "30:35"}, wantMigrated: idRange(1, 10)},
		{name: "range from the start", rows: 60, cursor: ":25", lookahead: lookahead(5),
			wantCursors: []string{"10:25", "20:25"}, wantMigrated: idRange(1, 10)},
		{name: "range ending inside the page", rows: 60, cursor: "30:35", lookahead: lookahead(5), wantMigrated: idRange(31, 35)},
		{name: "range ending with the page", rows: 60, cursor: "20:30", lookahead: lookahead(5), wantMigrated: idRange(21, 30)},
		{name: "negative after", rows: 60, cursor: "-5:3", lookahead: lookahead(5), wantMigrated: idRange(1, 3)},
		{name: "empty range", rows: 60, cursor: "40:40", lookahead: lookahead(5)},
		{name: "range not the frontier", rows: 60, cursor: "10:35", lookahead: lookahead(0), wantMigrated: idRange(11, 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := seededDatabase(t, tc.rows, 1000)
			in := migrationPage(t, 3, tc.cursor, 10, SQLiteMigrationArgs{Database: db, Percent: 3})
			in.Lookahead = tc.lookahead
			env := processortest.New(SQLiteMigration)
			res, err := env.Execute(in)
			if err != nil {
				t.Fatal(err)
			}
			if res.ItemsProcessed != int64(len(tc.wantMigrated)) {
				t.Errorf("processed %d rows, want %d", res.ItemsProcessed, len(tc.wantMigrated))
			}
			if got := env.EnqueuedCursors(); !slices.Equal(got, tc.wantCursors) {
				t.Errorf("enqueued %q, want %q", got, tc.wantCursors)
			}
			if signals := env.Signals(); len(signals) > 1 || (len(signals) == 1 && signals[0].Page.Number != 4) {
				t.Errorf("sent %+v, want at most one signal, numbered 4", signals)
			}
			if got := migratedIDs(t, db); !slices.Equal(got, tc.wantMigrated) {
				t.Errorf("migrated %v, want %v", got, tc.wantMigrated)
			}
		})
	}
}

// TestSQLiteMigrationRetriedLookahead: a retried page does not enqueue its
// successors again, and the rows it migrated are not migrated twice.
func TestSQLiteMigrationRetriedLookahead(t *testing.T) {
	db := seededDatabase(t, 60, 1000)
	in := migrationPage(t, 0, ":45", 10, SQLiteMigrationArgs{Database: db, Percent: 3})
	in.Lookahead = lookahead(4)
	env := processortest.New(SQLiteMigration)
	if _, err := env.Execute(in); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Retry(); err != nil {
		t.Fatal(err)
	}
	if got, want := env.EnqueuedCursors(), []string{"10:45", "20:45", "30:45", "40:45"}; len(env.Signals()) != 1 || !slices.Equal(got, want) {
		t.Errorf("sent %d signals enqueuing %q, want one enqueuing %q", len(env.Signals()), got, want)
	}
	for id, p := range readProducts(t, db) {
		if migrated := id <= 10; p.Migrated != migrated || (migrated && p.PriceCents != 1030) {
			t.Errorf("product %d = %+v, want migrated once only if in page 0", id, p)
		}
	}
}

// TestSQLiteMigrationWalkSeveralChains walks whole tables, with gaps in the
// IDs, split into key ranges, with lookahead, and checks that every row is
// migrated and that the pages processed as many rows as the table has: a row
// in two pages would be counted twice, a row in none left unmigrated.
func TestSQLiteMigrationWalkSeveralChains(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rows      int
		chains    int
		cursors   []string
		lookahead *int
	}{
		{name: "three chains, lookahead 4", rows: 95, chains: 3, lookahead: lookahead(4)},
		{name: "five chains, lookahead 1", rows: 95, chains: 5, lookahead: lookahead(1)},
		{name: "two chains, lookahead 1000", rows: 200, chains: 2, lookahead: lookahead(1000)},
		{name: "hand-made ranges, lookahead 3", rows: 95, cursors: []string{":30", "30:61", "61:62", "62"}, lookahead: lookahead(3)},
		{name: "ranges on page boundaries", rows: 80, cursors: []string{":20", "20:40", "40"}, lookahead: lookahead(2)},
		{name: "one chain, orchestrator without lookahead", rows: 47, chains: 1},
		{name: "empty table", rows: 0, chains: 4, lookahead: lookahead(5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := seededDatabase(t, tc.rows, 999)
			db, err := OpenDatabase(path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// Gaps in the keys, so that pages are not ranges of 10 IDs.
			if _, err := db.Exec(`DELETE FROM products WHERE id % 7 = 0`); err != nil {
				t.Fatal(err)
			}
			cursors := tc.cursors
			if cursors == nil {
				if cursors, err = SplitProducts(context.Background(), db, tc.chains); err != nil {
					t.Fatal(err)
				}
			}
			pages := walkJob(t, SQLiteMigration, cursors, 10, tc.lookahead, SQLiteMigrationArgs{Database: path, Percent: 2.5})
			if tc.lookahead != nil && *tc.lookahead > 1 && tc.rows > 0 && !askedMore(pages) {
				t.Errorf("no page enqueued more than one successor with lookahead %d", *tc.lookahead)
			}
			products := readProducts(t, path)
			if got := processedItems(pages); got != int64(len(products)) {
				t.Errorf("pages processed %d rows, the table has %d", got, len(products))
			}
			for id, p := range products {
				// 999 * 1.025 = 1023.975
				if p != (productRow{PriceCents: 1024, Migrated: true}) {
					t.Errorf("product %d = %+v, want migrated once to 1024", id, p)
				}
			}
		})
	}
}

func TestSplitProducts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rows   int
		delete string
		chains int
		want   []string
	}{
		{name: "three parts", rows: 10, chains: 3, want: []string{":3", "3:6", "6"}},
		{name: "as many parts as rows", rows: 4, chains: 4, want: []string{":1", "1:2", "2:3", "3"}},
		{name: "more parts than rows", rows: 2, chains: 5, want: []string{":1", "1"}},
		{name: "one part", rows: 10, chains: 1, want: []string{""}},
		{name: "empty table", rows: 0, chains: 3, want: []string{""}},
		{name: "gaps in the keys", rows: 20, delete: `id % 2 = 0`, chains: 2, want: []string{":9", "9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := OpenDatabase(seededDatabase(t, tc.rows, 1000))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if tc.delete != "" {
				if _, err := db.Exec(`DELETE FROM products WHERE ` + tc.delete); err != nil {
					t.Fatal(err)
				}
			}
			got, err := SplitProducts(context.Background(), db, tc.chains)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("SplitProducts(%d) = %q, want %q", tc.chains, got, tc.want)
			}
		})
	}
	db, err := OpenDatabase(seededDatabase(t, 3, 1000))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := SplitProducts(context.Background(), db, 0); err == nil {
		t.Error("SplitProducts(0) succeeded, want an error")
	}
}
