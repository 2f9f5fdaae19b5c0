package buildinfo

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
)

func TestFromModuleVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.4.0":                                   "1.4.0",
		"v1.4.0-rc.1":                              "1.4.0~rc.1",
		"v1.4.1-0.20260301120000-abcdef123456":     "1.4.1~0.20260301120000~abcdef123456",
		"v0.0.0-20260301120000-abcdef123456":       "0.0.0~20260301120000~abcdef123456",
		"v0.0.0-20260301120000-abcdef123456+dirty": "0.0.0~20260301120000~abcdef123456+dirty",
		"(devel)":         Unknown,
		"":                Unknown,
		"1.4.0":           Unknown, // not a module version
		"vX":              Unknown,
		"v1.0.0;rm -rf /": Unknown,
	} {
		assert.Equal(t, want, FromModuleVersion(in), "in %q", in)
	}
}

// dpkg must read every version FromModuleVersion makes, and order them as Go
// orders the module versions they came from.
func TestDebianAgreesOnOrder(t *testing.T) {
	testtier.Tool(t, "dpkg", "dpkg")
	// Ascending in Go's (semantic version) order.
	ordered := []string{
		"v0.0.0-20250101000000-aaaaaaaaaaaa",
		"v0.0.0-20260301120000-abcdef123456",
		"v0.0.0-20260301120000-abcdef123456+dirty",
		"v1.4.0-rc.1",
		"v1.4.0",
		"v1.4.1-0.20260301120000-abcdef123456",
		"v1.4.1",
		Unknown, // not a module version: checked for validity only
	}
	var debs []string
	for _, v := range ordered {
		d := FromModuleVersion(v)
		if v == Unknown {
			d = Unknown
		}
		out, err := exec.Command("dpkg", "--validate-version", d).CombinedOutput()
		require.NoError(t, err, "dpkg rejects %q (from %q): %s", d, v, out)
		debs = append(debs, d)
	}
	debs = debs[:len(debs)-1]
	for i := 1; i < len(debs); i++ {
		err := exec.Command("dpkg", "--compare-versions", debs[i-1], "lt", debs[i]).Run()
		assert.NoError(t, err, "dpkg does not order %s before %s", debs[i-1], debs[i])
	}
}

func TestVersionNeverEmpty(t *testing.T) {
	// In a test binary there is no -X; the fallback answers.
	v := Version()
	assert.NotEmpty(t, v)
	old := version
	t.Cleanup(func() { version = old })
	version = "9.9.9"
	assert.Equal(t, "9.9.9", Version())
}
