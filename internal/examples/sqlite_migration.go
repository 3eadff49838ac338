package examples

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"

	// The pure-Go driver keeps the worker buildable with CGO_ENABLED=0.
	_ "modernc.org/sqlite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// SQLiteMigrationArgs are the spec.processor.args of the sqlite-migration
// processor.
type SQLiteMigrationArgs struct {
	// Database is the path of the SQLite file holding the products table,
	// as SeedProducts creates it. Every worker must see the same file.
	Database string `json:"database"`
	// Percent is the price change in percent; 3 raises prices by 3%, -10
	// lowers them by 10%.
	Percent float64 `json:"percent"`
}

// sqliteMigrationInput is what the processor decodes: pointers tell a missing
// argument from a zero one.
type sqliteMigrationInput struct {
	Database *string  `json:"database"`
	Percent  *float64 `json:"percent"`
}

// The products table the sqlite-migration processor pages through. migrated
// is what makes the change idempotent: a row is changed once, whichever
// attempt of whichever page gets to it.
const createProductsTable = `CREATE TABLE products (
	id INTEGER PRIMARY KEY,
	name TEXT,
	price_cents INTEGER NOT NULL,
	migrated INTEGER NOT NULL DEFAULT 0
)`

// migrateProduct applies the price change to one row unless it was already
// applied. SQLite's ROUND rounds halves away from zero.
const migrateProduct = `UPDATE products
	SET price_cents = CAST(ROUND(price_cents * (100 + ?1) / 100.0) AS INTEGER), migrated = 1
	WHERE id = ?2 AND migrated = 0`

// SQLiteMigration is the sqlite-migration processor: it pages through the
// products table by primary key and changes every price by args.percent,
// exactly once per row however often a page is retried.
//
// Its cursor is "<after>" or "<after>:<until>": the page holds the next
// pageSize products with an ID above after (the last ID of the previous page;
// empty means the start of the table), and its chain stops at ID until
// (inclusive; absent: the end of the table). A job that starts several chains
// (spec.processor.cursors, see [SplitProducts]) gives each a key range, e.g.
// ":1000", "1000:2000", "2000"; every successor keeps its chain's
// ":<until>". See [ParseProductCursor].
//
// A page reads its own IDs and its successors' cursors in one keys-only
// query (see productKeys) and enqueues up to page.Lookahead() successors
// before it writes anything: successor k's cursor is the last ID of the page
// before it. A full page has a successor unless it ends at until, and that
// successor may turn out empty; a short page is the last. The page's rows
// change in one transaction, and rows an earlier attempt already migrated
// count as processed without being changed again.
func SQLiteMigration(ctx context.Context, page *processor.Page) (processor.Result, error) {
	var in sqliteMigrationInput
	if err := decodeArgsStrict(page, &in); err != nil {
		return processor.Result{}, err
	}
	if in.Database == nil || *in.Database == "" {
		return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidArgs,
			"spec.processor.args.database must be set to the path of the SQLite file")
	}
	if in.Percent == nil || *in.Percent < -100 {
		return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidArgs,
			"spec.processor.args.percent must be set to the price change in percent, -100 or more")
	}
	if page.Size < 1 {
		return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidPageInput,
			"page size %d is not positive", page.Size)
	}
	cursor, err := ParseProductCursor(page.Cursor)
	if err != nil {
		return processor.Result{}, err
	}
	// Opening would create a missing file, and the page would then fail on
	// a table that does not exist, which hides the real mistake.
	if _, err := os.Stat(*in.Database); errors.Is(err, fs.ErrNotExist) {
		return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidArgs,
			"spec.processor.args.database %q does not exist; create it with example-worker seed-sqlite", *in.Database)
	}

	// One connection per page: nothing lives across pages, and opening a
	// file is cheap next to a page of writes.
	db, err := OpenDatabase(*in.Database)
	if err != nil {
		return processor.Result{}, err
	}
	defer db.Close()

	hb := &heartbeater{page: page}
	ids, next, err := productKeys(ctx, db, cursor, page.Size, page.Lookahead(), hb)
	if err != nil {
		return processor.Result{}, err
	}
	if len(next) > 0 {
		if err := page.EnqueueNext(ctx, next...); err != nil {
			return processor.Result{}, err
		}
	}
	page.Heartbeat(ctx)
	if err := migrateProducts(ctx, db, ids, *in.Percent); err != nil {
		return processor.Result{}, err
	}
	return processor.Result{ItemsProcessed: int64(len(ids))}, nil
}

// ProductCursor is a parsed sqlite-migration cursor: where a page starts and
// where its chain stops.
type ProductCursor struct {
	// After is the ID the page's products follow (exclusive).
	After int64
	// Until is the last ID of the chain's key range (inclusive):
	// math.MaxInt64 when the cursor has no ":<until>".
	Until int64
	// Bounded says the cursor carried ":<until>"; successors carry it too.
	Bounded bool
}

// productCursorForm is the accepted form, for error messages.
const productCursorForm = `"<after>" or "<after>:<until>": product IDs, ` +
	`the page holds the IDs above after and its chain stops at until (inclusive, default the end of the table), ` +
	`after <= until; an empty after means the start of the table`

// ParseProductCursor parses a sqlite-migration cursor. A malformed one fails
// the page for good with type InvalidCursor: every retry would read it alike.
func ParseProductCursor(cursor string) (ProductCursor, error) {
	invalid := func(why string) (ProductCursor, error) {
		return ProductCursor{}, processor.NonRetryable(processor.ErrorTypeInvalidCursor,
			"cursor %q: %s; a sqlite-migration cursor is %s", cursor, why, productCursorForm)
	}
	c := ProductCursor{After: math.MinInt64, Until: math.MaxInt64}
	after, until, bounded := strings.Cut(cursor, ":")
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil {
			return invalid(fmt.Sprintf("after %q is not a product ID", after))
		}
		c.After = n
	}
	if !bounded {
		return c, nil
	}
	n, err := strconv.ParseInt(until, 10, 64)
	switch {
	case err != nil:
		return invalid(fmt.Sprintf("until %q is not a product ID", until))
	case n < c.After:
		return invalid(fmt.Sprintf("until %d is below after %d", n, c.After))
	}
	c.Until, c.Bounded = n, true
	return c, nil
}

// String formats the cursor as ParseProductCursor reads it.
func (c ProductCursor) String() string {
	var b strings.Builder
	if c.After != math.MinInt64 {
		b.WriteString(strconv.FormatInt(c.After, 10))
	}
	if c.Bounded {
		b.WriteString(":")
		b.WriteString(strconv.FormatInt(c.Until, 10))
	}
	return b.String()
}

// productKeys reads, in one keys-only keyset query, the IDs of the page at c
// and the cursors of up to lookahead pages after it in c's chain:
//
//	SELECT id FROM products WHERE id > after AND id <= until ORDER BY id LIMIT max(lookahead, 1) * size
//
// The page's IDs are the first size keys; successor k's cursor is the k-th
// size-th key, the last ID of the page before it, formatted like c (":<until>"
// kept). A successor exists only after a full page, as in a chain without
// lookahead, so the last one may be an empty page that finds the end of the
// table; none follows a page that ends at until, the end of its range. Only
// the page's IDs and every size-th key are kept, so a lookahead of 1000 pages
// of 100,000 costs a scan of the primary key, not the memory.
//
// One query rather than two: this page needs nothing but IDs (the update goes
// by ID), and one statement reads one snapshot, so the page and its
// successors' boundaries agree even while other pages commit. A processor
// that reads wide rows would read its page's rows with LIMIT size and run the
// keys-only query separately, from its page's last key (docs/processors.md).
func productKeys(ctx context.Context, db *sql.DB, c ProductCursor, size, lookahead int, hb *heartbeater) (ids []int64, next []string, err error) {
	limit := int64(max(lookahead, 1)) * int64(size)
	rows, err := db.QueryContext(ctx,
		`SELECT id FROM products WHERE id > ? AND id <= ? ORDER BY id LIMIT ?`, c.After, c.Until, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("read products after %d: %w", c.After, err)
	}
	defer rows.Close()
	ids = make([]int64, 0, size)
	for n := int64(1); rows.Next(); n++ {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, nil, fmt.Errorf("read products after %d: %w", c.After, err)
		}
		if n <= int64(size) {
			ids = append(ids, id)
		}
		// A page ending at the chain's last ID has nothing after it.
		if n%int64(size) == 0 && len(next) < lookahead && id < c.Until {
			s := c
			s.After = id
			next = append(next, s.String())
		}
		if n%4096 == 0 {
			// A deep lookahead scans many keys; keep the page alive meanwhile.
			hb.beat(ctx)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read products after %d: %w", c.After, err)
	}
	return ids, next, nil
}

func migrateProducts(ctx context.Context, db *sql.DB, ids []int64, percent float64) (err error) {
	if len(ids) == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, migrateProduct)
	if err != nil {
		return fmt.Errorf("prepare migration: %w", err)
	}
	defer stmt.Close()
	for _, id := range ids {
		if _, err := stmt.ExecContext(ctx, percent, id); err != nil {
			return fmt.Errorf("migrate product %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// OpenDatabase opens the SQLite file at path the way the sqlite-migration
// processor does, creating it if needed: in WAL mode, waiting for locks rather
// than failing on them, and taking the write lock when a transaction begins,
// so that several worker processes can write the same file.
func OpenDatabase(path string) (*sql.DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("SQLite path %q contains ? or #, which the driver would read as options", path)
	}
	db, err := sql.Open("sqlite", path+"?_busy_timeout=30000&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// A page runs its statements one after another, so one connection is
	// all it needs, and the settings above are applied once per page.
	db.SetMaxOpenConns(1)
	return db, nil
}

// SeedProducts replaces the products table of the SQLite file at path with
// rows products, with IDs 1..rows, named product-<id>, priced priceCents and
// not yet migrated.
func SeedProducts(ctx context.Context, path string, rows int, priceCents int64) (err error) {
	if rows < 0 {
		return fmt.Errorf("cannot seed %d rows", rows)
	}
	db, err := OpenDatabase(path)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS products`); err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	if _, err := tx.ExecContext(ctx, createProductsTable); err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO products (id, name, price_cents) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	defer stmt.Close()
	for id := 1; id <= rows; id++ {
		if _, err := stmt.ExecContext(ctx, id, "product-"+strconv.Itoa(id), priceCents); err != nil {
			return fmt.Errorf("seed %s: product %d: %w", path, id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	return nil
}

// SplitProducts returns cursors for spec.processor.cursors that split the
// products table into chains key ranges of about equal row counts (fewer when
// the table has fewer rows): ":<b1>", "<b1>:<b2>", ..., "<bn-1>". The first
// range starts at the start of the table and the last is open-ended, so
// together they cover every ID, including IDs inserted before or after the
// existing ones while the job runs, and no two ranges share one.
//
// It counts the rows, then reads the keys once in order and takes the last
// ID of each part as a boundary: one pass over the primary key, where a
// `LIMIT 1 OFFSET ?` query per boundary would walk the index once each.
// Rows deleted between the two reads only make the parts uneven.
func SplitProducts(ctx context.Context, db *sql.DB, chains int) ([]string, error) {
	if chains < 1 {
		return nil, fmt.Errorf("cannot split products into %d chains: use 1 or more", chains)
	}
	var count int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM products`).Scan(&count); err != nil {
		return nil, fmt.Errorf("count products: %w", err)
	}
	parts := min(int64(chains), count)
	if parts <= 1 {
		return []string{""}, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT id FROM products ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read product IDs: %w", err)
	}
	defer rows.Close()
	var bounds []int64
	// Part i (1-based) ends at row floor(i*count/parts).
	nextEnd := count / parts
	for n := int64(1); int64(len(bounds)) < parts-1 && rows.Next(); n++ {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read product IDs: %w", err)
		}
		if n == nextEnd {
			bounds = append(bounds, id)
			nextEnd = (int64(len(bounds)) + 1) * count / parts
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read product IDs: %w", err)
	}
	cursors := make([]string, 0, len(bounds)+1)
	for i, b := range bounds {
		c := ProductCursor{After: math.MinInt64, Until: b, Bounded: true}
		if i > 0 {
			c.After = bounds[i-1]
		}
		cursors = append(cursors, c.String())
	}
	last := ProductCursor{After: math.MinInt64, Until: math.MaxInt64}
	if len(bounds) > 0 {
		last.After = bounds[len(bounds)-1]
	}
	return append(cursors, last.String()), nil
}
