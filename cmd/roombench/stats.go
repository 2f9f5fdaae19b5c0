package main

import (
	"math"
	"slices"
	"time"
)

// Summary describes a sample of durations. Percentiles use the nearest-rank
// method: p99 of 500 samples is the 495th smallest.
type Summary struct {
	N    int     `json:"n"`
	Min  float64 `json:"min_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// summarize returns the summary of ds in milliseconds; the zero Summary for none.
func summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum float64
	for _, d := range s {
		sum += ms(d)
	}
	return Summary{
		N:    len(s),
		Min:  ms(s[0]),
		P50:  ms(rank(s, 0.50)),
		P90:  ms(rank(s, 0.90)),
		P99:  ms(rank(s, 0.99)),
		Max:  ms(s[len(s)-1]),
		Mean: sum / float64(len(s)),
	}
}

// rank returns the nearest-rank q-quantile of sorted s.
func rank(s []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
