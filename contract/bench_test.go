package contract

import (
	"testing"
	"time"
)

func BenchmarkDecodeCommand(b *testing.B) {
	p := []byte(`{"request_id":"b-1001","action":"start_visit","visit_id":"v-42","duration":"1h30m","expires_at":"` +
		FormatTime(now.Add(10*time.Minute)) + `"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, cerr := DecodeCommand(p, 0, now); cerr != nil {
			b.Fatal(cerr)
		}
	}
}
