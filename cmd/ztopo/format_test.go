package main

import "testing"

func TestFormats(t *testing.T) {
	for _, c := range []struct {
		sec  float64
		want string
	}{
		{0, "-"}, {0.4, "0s"}, {59.9, "59s"}, {61, "1m1s"}, {3600 + 120, "1h2m"}, {2*86400 + 3*3600, "2d3h"},
	} {
		if got := uptimeText(c.sec); got != c.want {
			t.Errorf("uptimeText(%v): got %q, want %q", c.sec, got, c.want)
		}
	}
	for _, c := range []struct {
		r    float64
		want string
	}{
		{0, "0"}, {-1, "0"}, {0.25, "0.3"}, {7.5, "7.5"}, {840.4, "840"}, {12345, "12.3k"}, {1050000, "1.05M"}, {999999, "1M"}, {9999, "10k"}, {999.6, "1k"},
	} {
		if got := rateText(c.r); got != c.want {
			t.Errorf("rateText(%v): got %q, want %q", c.r, got, c.want)
		}
	}
}
