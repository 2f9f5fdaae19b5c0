package vm

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseMarker(t *testing.T) {
	cases := []struct {
		line   string
		want   Outcome
		reason string
		ok     bool
	}{
		{"ROOMD-VMTEST PASS\r", OutcomePass, "", true},
		{"[    1.2] ROOMD-VMTEST FAIL: door open/close: no reading", OutcomeFail, "door open/close: no reading", true},
		{"ROOMD-VMTEST SKIP: not wired", OutcomeSkip, "not wired", true},
		{"ROOMD-VMTEST PASSED", OutcomeNone, "", false},
		{"vmtest: ok   door", OutcomeNone, "", false},
		{"", OutcomeNone, "", false},
	}
	for _, c := range cases {
		o, reason, ok := ParseMarker(c.line)
		assert.Equal(t, c.want, o, c.line)
		assert.Equal(t, c.reason, reason, c.line)
		assert.Equal(t, c.ok, ok, c.line)
	}
}
