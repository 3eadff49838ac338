package controller

import "unicode/utf8"

// Limits of the messages the controller writes. An Event's note may hold
// 1024 bytes (events.k8s.io/v1 rejects a longer one); condition messages
// are kept as short, since they carry the same processor and Temporal
// errors, which can run to kilobytes and include what a database driver
// put in them.
const (
	maxEventNote        = 1024
	maxConditionMessage = 1024
)

// ellipsis marks a message that was cut.
const ellipsis = "…"

// truncate cuts s to at most limit bytes, on a rune boundary, ending in an
// ellipsis when anything was cut.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - len(ellipsis)
	if cut <= 0 {
		return ellipsis[:min(limit, len(ellipsis))]
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
