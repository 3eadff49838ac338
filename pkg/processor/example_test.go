package processor_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/worker"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// productStore stands in for the data set a processor pages through.
type productStore interface {
	// Products returns up to limit products with an ID greater than after.
	Products(ctx context.Context, after string, limit int) ([]product, error)
	SetPrice(ctx context.Context, id string, cents int64) error
}

type product struct {
	ID         string
	PriceCents int64
}

// inflatePrices returns a page processor that raises every product's price by
// spec.processor.args.percent. Its cursor is the last product ID of the
// previous page.
func inflatePrices(store productStore) processor.Func {
	return func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		var args struct {
			Percent int64 `json:"percent"`
		}
		if err := page.DecodeArgs(&args); err != nil {
			return processor.Result{}, err
		}
		products, err := store.Products(ctx, page.Cursor, page.Size)
		if err != nil {
			return processor.Result{}, err // retried
		}
		// A full page means there may be more: let the next page start now,
		// while this one does its work.
		if len(products) == page.Size {
			if err := page.EnqueueNext(ctx, products[len(products)-1].ID); err != nil {
				return processor.Result{}, err
			}
		}
		var processed int64
		for _, p := range products {
			if p.PriceCents <= 0 {
				page.FailItem(p.ID, "InvalidRecord", fmt.Sprintf("price %d cents is not positive", p.PriceCents))
				continue
			}
			if err := store.SetPrice(ctx, p.ID, p.PriceCents*(100+args.Percent)/100); err != nil {
				return processor.Result{}, err
			}
			processed++
			page.Heartbeat(ctx)
		}
		return processor.Result{ItemsProcessed: processed}, nil
	}
}

func ExampleRegister() {
	var store productStore // your database client

	cfg, err := processor.ConfigFromEnv()
	if err != nil {
		slog.Error("Invalid worker configuration", "error", err)
		os.Exit(2)
	}
	err = processor.Run(context.Background(), cfg, func(r worker.Registry) {
		processor.Register(r, "InflateProductPrices", inflatePrices(store))
	})
	if err != nil {
		slog.Error("Worker failed", "error", err)
		os.Exit(1)
	}
}
