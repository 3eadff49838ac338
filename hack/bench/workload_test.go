package main

import (
	"fmt"
	"testing"
)

// TestOffsetChainsCoverEveryPageOnce follows the chains the way the
// orchestrator does, each frontier page enqueuing the successors it is asked
// for, and checks that every variant's job processes each page exactly once.
func TestOffsetChainsCoverEveryPageOnce(t *testing.T) {
	for _, pages := range []int{1, 7, 8, 9, 100, 501} {
		for _, chains := range []int{1, 8} {
			if chains > pages {
				continue
			}
			for _, lookahead := range []int{1, 3, 50} {
				t.Run(fmt.Sprintf("pages=%d/chains=%d/lookahead=%d", pages, chains, lookahead), func(t *testing.T) {
					first := []string{"0"}
					if chains > 1 {
						first = chainCursors(pages, chains)
					}
					processed := make([]int, pages)
					for _, cursor := range first {
						for frontier, steps := cursor, 0; frontier != ""; steps++ {
							if steps > pages {
								t.Fatalf("the chain from %q does not end", cursor)
							}
							c, err := parseCursor(frontier, pages)
							if err != nil {
								t.Fatal(err)
							}
							processed[c.Index]++
							// The last successor becomes the frontier; the
							// others are not asked for more and only run.
							next := c.successors(lookahead)
							frontier = ""
							for i, cursor := range next {
								n, err := parseCursor(cursor, pages)
								if err != nil {
									t.Fatal(err)
								}
								if n.End != c.End {
									t.Fatalf("successor %q of %q left its chain", cursor, c.at(c.Index))
								}
								if i < len(next)-1 {
									processed[n.Index]++
								} else {
									frontier = cursor
								}
							}
						}
					}
					for i, n := range processed {
						if n != 1 {
							t.Fatalf("page %d processed %d times", i, n)
						}
					}
				})
			}
		}
	}
}

func TestParseCursorRefusesPagesOutsideTheRun(t *testing.T) {
	for _, cursor := range []string{"", "x", "-1", "10", "3:11", "3:3", "3:x"} {
		if _, err := parseCursor(cursor, 10); err == nil {
			t.Errorf("parseCursor(%q, 10) accepted a cursor outside the run", cursor)
		}
	}
}
