package batchctl

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/scheme"
)

func newListCommand(e *env) *cobra.Command {
	var allNamespaces bool
	print := genericclioptions.NewPrintFlags("").WithTypeSetter(scheme.New())
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List jobs with their phase, progress, rate and age",
		Long: `List the BatchJobs of a namespace (or of all namespaces with -A) with their
phase, progress (items processed, and the share done when the size of the
data set is known), rate in items per second, and age.`,
		Example: `  kubectl batch list -n shop
  kubectl batch list -A
  kubectl batch list -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := e.setup(); err != nil {
				return err
			}
			ns := e.ns
			if allNamespaces {
				ns = ""
			}
			list := &batchv1alpha1.BatchJobList{}
			if err := e.client.List(cmd.Context(), list, client.InNamespace(ns)); err != nil {
				return e.explain(err, "")
			}
			if *print.OutputFormat != "" {
				p, err := print.ToPrinter()
				if err != nil {
					return err
				}
				for i := range list.Items {
					list.Items[i].SetGroupVersionKind(batchv1alpha1.GroupVersion.WithKind("BatchJob"))
				}
				return p.PrintObj(list, e.streams().Out)
			}
			if len(list.Items) == 0 {
				if allNamespaces {
					fmt.Fprintln(e.streams().ErrOut, "No batchjobs found.")
				} else {
					fmt.Fprintf(e.streams().ErrOut, "No batchjobs found in namespace %q.\n", ns)
				}
				return nil
			}
			return printList(e, list, allNamespaces)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "List the jobs of all namespaces.")
	print.AddFlags(cmd)
	return cmd
}

func printList(e *env, list *batchv1alpha1.BatchJobList, allNamespaces bool) error {
	w := printers.GetNewTabWriter(e.streams().Out)
	if allNamespaces {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tPHASE\tPROGRESS\tRATE\tAGE")
	now := time.Now()
	for i := range list.Items {
		job := &list.Items[i]
		p := progressOf(job)
		if allNamespaces {
			fmt.Fprintf(w, "%s\t", job.Namespace)
		}
		rate := "-"
		if p.RateKnown {
			rate = strconv.FormatFloat(p.Rate, 'f', -1, 64) + "/s"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", job.Name, p.Phase, p.Short(), rate, age(job.CreationTimestamp.Time, now))
	}
	return w.Flush()
}
