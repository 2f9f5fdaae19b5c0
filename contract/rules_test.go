package contract

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract/contracttest"
)

// TestContractRulesSchemaAndProse: each rule docs/asyncapi.yaml encodes
// refuses its break and accepts the payload without it; each rule only the
// prose carries has a break the schema accepts. A rule newly encoded fails
// the second half: move it to EncodedRules (contract/contracttest/rules.go).
func TestContractRulesSchemaAndProse(t *testing.T) {
	s := contracttest.Load(t)
	for _, r := range contracttest.EncodedRules {
		require.NotEqual(t, r.Good, r.Bad(), "%s: the break changes nothing", r.Rule)
		require.True(t, json.Valid([]byte(r.Bad())), "%s: the break is not JSON: %s", r.Rule, r.Bad())
		assert.NoError(t, s.Validate(t, r.Message, []byte(r.Good)), "%s: the payload without the break", r.Rule)
		assert.Error(t, s.Validate(t, r.Message, []byte(r.Bad())), "the schema should refuse: %s", r.Rule)
	}
	for _, r := range contracttest.ProseRules {
		require.True(t, json.Valid([]byte(r.Payload)), "the payload of %q is not JSON: %s", r.Rule, r.Payload)
		assert.NoError(t, s.Validate(t, r.Message, []byte(r.Payload)),
			"the schema now refuses the break of %q: move the rule to EncodedRules", r.Rule)
	}
}
