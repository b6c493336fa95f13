package main

import "fmt"

// progressText is "N" or "N/EXPECT".
func progressText(n uint64, expect int) string {
	if expect <= 0 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d/%d", n, expect)
}
