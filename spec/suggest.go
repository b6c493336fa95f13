package spec

import (
	"fmt"
	"strings"
)

// editDistance is the Levenshtein distance between a and b (insertions,
// deletions, substitutions) with a swap of two adjacent letters counting as
// one edit, since "ecoh" for "echo" is the typo people make (the optimal
// string alignment distance). Over bytes: every name ztopo suggests is ASCII.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j]; three rows suffice.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// closest returns the candidate nearest to name, if it is near enough to be
// a likely typo: one edit for names of up to 4 letters, two up to 8, three
// beyond. Ties go
// to the earlier candidate, so callers pass sorted lists for stable output.
func closest(name string, candidates []string) (string, bool) {
	limit := 1
	switch {
	case len(name) > 8:
		limit = 3
	case len(name) > 4:
		limit = 2
	}
	best, bestD := "", limit+1
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := editDistance(name, c)
		// On a tie, a candidate that extends what was typed is the
		// likelier one: "PUL" is a PULL cut short more than a PUB mistyped.
		if d < bestD || (d == bestD && best != "" && strings.HasPrefix(c, name) && !strings.HasPrefix(best, name)) {
			best, bestD = c, d
		}
	}
	return best, best != ""
}

// Suggest returns the candidate nearest to name when it is a likely typo of
// it, for did-you-mean hints outside spec (the CLI's verb names); pass the
// candidates sorted for stable output.
func Suggest(name string, candidates []string) (string, bool) {
	return closest(name, candidates)
}

// didYouMean is the Hint for a misspelt name, or "" when nothing is close.
func didYouMean(name string, candidates []string) string {
	if c, ok := closest(name, candidates); ok {
		return fmt.Sprintf("did you mean %q?", c)
	}
	return ""
}
