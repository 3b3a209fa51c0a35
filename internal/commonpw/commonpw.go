// Package commonpw holds the list of common passwords that fiberauth refuses.
package commonpw

import (
	_ "embed"
	"strings"
	"sync"
)

//go:embed common.txt
var list string

// set is built on first use: most processes that import fiberauth only verify
// tokens and never need the ~28,000 entries in memory.
var set = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 28000)
	for _, p := range strings.Split(list, "\n") {
		if p != "" {
			m[p] = struct{}{}
		}
	}
	return m
})

// Len reports how many passwords the list holds.
func Len() int { return len(set()) }

// Contains reports whether p, compared case-insensitively, is on the list.
func Contains(p string) bool {
	_, ok := set()[strings.ToLower(p)]
	return ok
}
