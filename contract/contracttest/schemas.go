// Package contracttest reads the contract's exact schemas, docs/asyncapi.yaml,
// strictly and validates payloads against them with a JSON Schema validator
// nobody here wrote, for the tests of every package that writes or reads the
// contract.
package contracttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// AsyncAPIPath returns the path of docs/asyncapi.yaml, found from the
// working directory of the test (any package of the module) upwards.
func AsyncAPIPath(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "docs", "asyncapi.yaml")
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test's directory")
		dir = parent
	}
}

// The strict reading of docs/asyncapi.yaml. A YAML mistake that a loose
// reader accepts (a comma inside an unquoted flow mapping turns the rest of a
// description into a key with a null value; a key given twice silently keeps
// the last) makes a contract that says something else than its author meant.
// CheckAsyncAPI walks the node tree with the object types of AsyncAPI 3.0.0
// and JSON Schema draft 7 and reports every duplicate key, every null value
// outside example data, every keyword the object type does not have, every
// value of the wrong YAML kind and every $ref that does not resolve.

// Child kinds: "scalar" (a non-null scalar), "data" (anything: example
// payloads, enum, const, default), "ref" (a Reference Object), "map:K" (a
// mapping of names to K), "list:K" (a sequence of K), "refor:K" (a Reference
// Object or K), or an object kind of asyncapiObjects.
var asyncapiObjects = map[string]map[string]string{
	"root": {"asyncapi": "scalar", "id": "scalar", "info": "info", "servers": "map:refor:server",
		"defaultContentType": "scalar", "channels": "map:refor:channel", "operations": "map:refor:operation",
		"components": "components"},
	"info": {"title": "scalar", "version": "scalar", "description": "scalar", "termsOfService": "scalar",
		"contact": "contact", "license": "license", "tags": "list:refor:tag", "externalDocs": "refor:externalDocs"},
	"contact":      {"name": "scalar", "url": "scalar", "email": "scalar"},
	"license":      {"name": "scalar", "url": "scalar"},
	"tag":          {"name": "scalar", "description": "scalar", "externalDocs": "refor:externalDocs"},
	"externalDocs": {"description": "scalar", "url": "scalar"},
	"server": {"host": "scalar", "protocol": "scalar", "protocolVersion": "scalar", "pathname": "scalar",
		"description": "scalar", "title": "scalar", "summary": "scalar", "variables": "map:refor:serverVariable",
		"security": "list:refor:securityScheme", "tags": "list:refor:tag", "externalDocs": "refor:externalDocs",
		"bindings": "refor:serverBindings"},
	"serverVariable": {"enum": "list:scalar", "default": "scalar", "description": "scalar", "examples": "list:scalar"},
	"serverBindings": {"mqtt": "mqttServerBinding"},
	"mqttServerBinding": {"clientId": "scalar", "cleanSession": "scalar", "lastWill": "data", "keepAlive": "scalar",
		"sessionExpiryInterval": "scalar", "maximumPacketSize": "scalar", "bindingVersion": "scalar"},
	"channel": {"address": "scalar", "messages": "map:refor:message", "title": "scalar", "summary": "scalar",
		"description": "scalar", "servers": "list:ref", "parameters": "map:refor:parameter", "tags": "list:refor:tag",
		"externalDocs": "refor:externalDocs", "bindings": "refor:channelBindings"},
	"channelBindings": {},
	"parameter":       {"enum": "list:scalar", "default": "scalar", "description": "scalar", "examples": "list:scalar", "location": "scalar"},
	"operation": {"action": "scalar", "channel": "ref", "title": "scalar", "summary": "scalar", "description": "scalar",
		"security": "list:refor:securityScheme", "tags": "list:refor:tag", "externalDocs": "refor:externalDocs",
		"bindings": "refor:operationBindings", "traits": "list:ref", "messages": "list:ref", "reply": "refor:operationReply"},
	"operationReply":    {"address": "refor:replyAddress", "channel": "ref", "messages": "list:ref"},
	"replyAddress":      {"description": "scalar", "location": "scalar"},
	"operationBindings": {"mqtt": "mqttOperationBinding"},
	"mqttOperationBinding": {"qos": "scalar", "retain": "scalar", "messageExpiryInterval": "scalar",
		"bindingVersion": "scalar"},
	"message": {"headers": "schema", "payload": "schema", "correlationId": "ref", "contentType": "scalar",
		"name": "scalar", "title": "scalar", "summary": "scalar", "description": "scalar", "tags": "list:refor:tag",
		"externalDocs": "refor:externalDocs", "bindings": "refor:messageBindings", "examples": "list:messageExample",
		"traits": "list:ref"},
	"messageBindings": {"mqtt": "mqttMessageBinding"},
	"mqttMessageBinding": {"payloadFormatIndicator": "scalar", "correlationData": "schema", "contentType": "scalar",
		"responseTopic": "scalar", "bindingVersion": "scalar"},
	"messageExample": {"headers": "data", "payload": "data", "name": "scalar", "summary": "scalar"},
	"securityScheme": {"type": "scalar", "description": "scalar", "name": "scalar", "in": "scalar", "scheme": "scalar",
		"bearerFormat": "scalar", "flows": "data", "openIdConnectUrl": "scalar", "scopes": "list:scalar"},
	"components": {"schemas": "map:schema", "servers": "map:refor:server", "channels": "map:refor:channel",
		"operations": "map:refor:operation", "messages": "map:refor:message", "securitySchemes": "map:refor:securityScheme",
		"serverVariables": "map:refor:serverVariable", "parameters": "map:refor:parameter", "correlationIds": "map:data",
		"replies": "map:refor:operationReply", "replyAddresses": "map:refor:replyAddress",
		"externalDocs": "map:refor:externalDocs", "tags": "map:refor:tag", "operationTraits": "map:data",
		"messageTraits": "map:data", "serverBindings": "map:refor:serverBindings",
		"channelBindings": "map:refor:channelBindings", "operationBindings": "map:refor:operationBindings",
		"messageBindings": "map:refor:messageBindings"},
}

// schemaKeywords are the keywords of a Schema Object: JSON Schema draft 7
// and AsyncAPI's discriminator, externalDocs and deprecated.
var schemaKeywords = map[string]string{
	"$id": "scalar", "$schema": "scalar", "$ref": "scalar", "$comment": "scalar",
	"title": "scalar", "description": "scalar", "default": "data", "readOnly": "scalar", "writeOnly": "scalar",
	"examples": "data", "multipleOf": "scalar", "maximum": "scalar", "exclusiveMaximum": "scalar",
	"minimum": "scalar", "exclusiveMinimum": "scalar", "maxLength": "scalar", "minLength": "scalar",
	"pattern": "scalar", "additionalItems": "schema", "items": "schemaOrList", "maxItems": "scalar",
	"minItems": "scalar", "uniqueItems": "scalar", "contains": "schema", "maxProperties": "scalar",
	"minProperties": "scalar", "required": "list:scalar", "additionalProperties": "schema",
	"definitions": "map:schema", "properties": "map:schema", "patternProperties": "map:schema",
	"dependencies": "map:schemaOrList", "propertyNames": "schema", "const": "data", "enum": "data",
	"type": "scalarOrList", "format": "scalar", "contentMediaType": "scalar", "contentEncoding": "scalar",
	"if": "schema", "then": "schema", "else": "schema", "allOf": "list:schema", "anyOf": "list:schema",
	"oneOf": "list:schema", "not": "schema",
	"discriminator": "scalar", "externalDocs": "refor:externalDocs", "deprecated": "scalar",
}

// CheckAsyncAPI reads an AsyncAPI document strictly and returns every
// problem found, each naming its line and path.
func CheckAsyncAPI(data []byte) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []string{err.Error()}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return []string{"not one YAML document"}
	}
	w := &asyncapiWalker{root: doc.Content[0]}
	w.walk(doc.Content[0], "root", "")
	return w.problems
}

type asyncapiWalker struct {
	root     *yaml.Node
	problems []string
}

func (w *asyncapiWalker) fail(n *yaml.Node, path, format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf("line %d: %s: %s", n.Line, path, fmt.Sprintf(format, args...)))
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// pairs returns the key/value pairs of a mapping, reporting duplicate keys.
func (w *asyncapiWalker) pairs(n *yaml.Node, path string) [][2]*yaml.Node {
	if n.Kind == yaml.AliasNode {
		w.fail(n, path, "YAML aliases are not used in this document")
		return nil
	}
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "want a mapping, got %s", kindName(n))
		return nil
	}
	seen := map[string]bool{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.fail(k, path, "a key that is not a scalar")
			continue
		}
		if seen[k.Value] {
			w.fail(k, path, "key %q given twice", k.Value)
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

func kindName(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.ScalarNode:
		return "a scalar"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a sequence"
	}
	return "an alias"
}

func (w *asyncapiWalker) walk(n *yaml.Node, kind, path string) {
	switch {
	case kind == "data":
		w.data(n, path)
	case kind == "scalar":
		if n.Kind != yaml.ScalarNode || isNull(n) {
			w.fail(n, path, "want a value, got %s", kindName(n))
		}
	case kind == "scalarOrList":
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				w.walk(c, "scalar", fmt.Sprintf("%s[%d]", path, i))
			}
		} else {
			w.walk(n, "scalar", path)
		}
	case kind == "ref":
		w.ref(n, path)
	case strings.HasPrefix(kind, "refor:"):
		if n.Kind == yaml.MappingNode && hasKey(n, "$ref") {
			w.ref(n, path)
		} else {
			w.walk(n, strings.TrimPrefix(kind, "refor:"), path)
		}
	case strings.HasPrefix(kind, "map:"):
		for _, kv := range w.pairs(n, path) {
			w.walk(kv[1], strings.TrimPrefix(kind, "map:"), path+"."+kv[0].Value)
		}
	case strings.HasPrefix(kind, "list:"):
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "want a sequence, got %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			w.walk(c, strings.TrimPrefix(kind, "list:"), fmt.Sprintf("%s[%d]", path, i))
		}
	case kind == "schemaOrList":
		if n.Kind == yaml.SequenceNode {
			w.walk(n, "list:schema", path)
		} else {
			w.walk(n, "schema", path)
		}
	case kind == "schema":
		w.schema(n, path)
	default:
		fields, ok := asyncapiObjects[kind]
		if !ok {
			panic("unknown object kind " + kind)
		}
		for _, kv := range w.pairs(n, path) {
			k, v := kv[0], kv[1]
			child, ok := fields[k.Value]
			if !ok {
				w.fail(k, path, "%q is not a field of the %s object", k.Value, kind)
				continue
			}
			if isNull(v) {
				w.fail(v, path+"."+k.Value, "null value")
				continue
			}
			w.walk(v, child, path+"."+k.Value)
		}
	}
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// ref checks a Reference Object: $ref alone, pointing into this document.
func (w *asyncapiWalker) ref(n *yaml.Node, path string) {
	kv := w.pairs(n, path)
	if len(kv) != 1 || kv[0][0].Value != "$ref" {
		w.fail(n, path, "want a Reference Object ($ref alone)")
		return
	}
	w.resolve(kv[0][1], path+".$ref")
}

func (w *asyncapiWalker) resolve(v *yaml.Node, path string) {
	if v.Kind != yaml.ScalarNode || !strings.HasPrefix(v.Value, "#/") {
		w.fail(v, path, "want a local reference #/..., got %q", v.Value)
		return
	}
	cur := w.root
	for _, part := range strings.Split(strings.TrimPrefix(v.Value, "#/"), "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		var next *yaml.Node
		if cur.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(cur.Content); i += 2 {
				if cur.Content[i].Value == part {
					next = cur.Content[i+1]
				}
			}
		}
		if next == nil {
			w.fail(v, path, "%s does not resolve", v.Value)
			return
		}
		cur = next
	}
}

func (w *asyncapiWalker) schema(n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!bool") {
		return // true and false are schemas
	}
	for _, kv := range w.pairs(n, path) {
		k, v := kv[0], kv[1]
		child, ok := schemaKeywords[k.Value]
		if !ok {
			w.fail(k, path, "%q is not a JSON Schema draft 7 or AsyncAPI schema keyword", k.Value)
			continue
		}
		if isNull(v) && child != "data" {
			w.fail(v, path+"."+k.Value, "null value")
			continue
		}
		if k.Value == "$ref" {
			w.resolve(v, path+".$ref")
			continue
		}
		w.walk(v, child, path+"."+k.Value)
	}
}

// data is example data: any value, null included, but no key twice.
func (w *asyncapiWalker) data(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for _, kv := range w.pairs(n, path) {
			w.data(kv[1], path+"."+kv[0].Value)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			w.data(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.AliasNode:
		w.fail(n, path, "YAML aliases are not used in this document")
	}
}

// Schemas are the message schemas of docs/asyncapi.yaml compiled by
// a JSON Schema validator nobody here wrote.
type Schemas struct {
	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
	compiler *jsonschema.Compiler
	Doc      map[string]any
}

const asyncapiURL = "file:///roomd/docs/asyncapi.json"

// Load reads docs/asyncapi.yaml, checks it strictly and
// prepares its schemas for validation (draft 7, formats asserted).
func Load(t testing.TB) *Schemas {
	t.Helper()
	data, err := os.ReadFile(AsyncAPIPath(t))
	require.NoError(t, err)
	require.Empty(t, CheckAsyncAPI(data), "docs/asyncapi.yaml read strictly")
	var raw any
	require.NoError(t, yaml.Unmarshal(data, &raw))
	js, err := json.Marshal(raw)
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	require.NoError(t, c.AddResource(asyncapiURL, doc))
	var m map[string]any
	require.NoError(t, json.Unmarshal(js, &m))
	return &Schemas{compiled: map[string]*jsonschema.Schema{}, compiler: c, Doc: m}
}

// Schema returns the compiled schema at a JSON pointer of the document,
// e.g. "/components/messages/event/payload".
func (s *Schemas) Schema(t testing.TB, pointer string) *jsonschema.Schema {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[pointer]; ok {
		return sch
	}
	sch, err := s.compiler.Compile(asyncapiURL + "#" + pointer)
	require.NoError(t, err, "compile %s", pointer)
	s.compiled[pointer] = sch
	return sch
}

// Validate checks payload against the payload schema of message (a key of
// components.messages). A text/plain message is validated as a string.
func (s *Schemas) Validate(t testing.TB, message string, payload []byte) error {
	t.Helper()
	sch := s.Schema(t, "/components/messages/"+message+"/payload")
	var inst any
	if message == "availability" {
		inst = string(payload)
	} else {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("%s: not JSON: %w", message, err)
		}
		inst = v
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s payload %s: %v", message, payload, err)
	}
	return nil
}

// StrictUnmarshal decodes one JSON value into v as a careful consumer would:
// an unknown field or trailing data is an error.
func StrictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}
