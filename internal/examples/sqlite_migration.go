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
// exactly once per row however often a page is retried. Its cursor is the last
// ID of the previous page; empty means the start of the table.
//
// A full page enqueues the next page before it writes anything; a short page
// is the last. The page's rows change in one transaction, and rows an earlier
// attempt already migrated count as processed without being changed again.
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
	after := int64(math.MinInt64)
	if page.Cursor != "" {
		var err error
		after, err = strconv.ParseInt(page.Cursor, 10, 64)
		if err != nil {
			return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidCursor,
				"cursor %q is not a product ID", page.Cursor)
		}
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

	ids, err := productPage(ctx, db, after, page.Size)
	if err != nil {
		return processor.Result{}, err
	}
	if len(ids) == page.Size {
		if err := page.EnqueueNext(ctx, strconv.FormatInt(ids[len(ids)-1], 10)); err != nil {
			return processor.Result{}, err
		}
	}
	page.Heartbeat(ctx)
	if err := migrateProducts(ctx, db, ids, *in.Percent); err != nil {
		return processor.Result{}, err
	}
	return processor.Result{ItemsProcessed: int64(len(ids))}, nil
}

// productPage returns the IDs of up to size products after the ID after, in
// order: keyset pagination, which stays fast however deep the page is.
func productPage(ctx context.Context, db *sql.DB, after int64, size int) ([]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT id FROM products WHERE id > ? ORDER BY id LIMIT ?`, after, size)
	if err != nil {
		return nil, fmt.Errorf("read products after %d: %w", after, err)
	}
	defer rows.Close()
	ids := make([]int64, 0, size)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read products after %d: %w", after, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read products after %d: %w", after, err)
	}
	return ids, nil
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
