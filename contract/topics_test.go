package contract

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidRoom(t *testing.T) {
	for s, ok := range map[string]bool{
		"room-1": true, "1": true, "a_b-c": true, strings.Repeat("a", 64): true,
		"": false, "-a": false, "Room": false, "a/b": false, "a+": false, "a#": false, strings.Repeat("a", 65): false, "é": false,
		"booking": false, "guard-station": false, "sim-driver": false, "on_site": false, "booking-2": true,
	} {
		assert.Equal(t, ok, ValidRoom(s), "%q", s)
	}
}
