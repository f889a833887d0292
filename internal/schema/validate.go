package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// validator checks one message against one schema version and returns
// its messages (none when valid).
type validator interface {
	validate(msg []byte) []string
}

// newValidator builds the validator of a stored version. A stored
// definition that no longer compiles (e.g. an Avro definition, which is
// only checked for emptiness at registration) fails every message with
// the reason instead of failing the produce path with an internal error.
func newValidator(typ string, def []byte) validator {
	switch typ {
	case TypeJSON:
		v, err := compileJSON(def)
		if err != nil {
			return failValidator("invalid JSON schema: " + err.Error())
		}
		return v
	case TypeAvro:
		return newAvroValidator(def)
	default:
		return protobufValidator{}
	}
}

type failValidator string

func (f failValidator) validate([]byte) []string { return []string{string(f)} }

// jsonValidator validates with github.com/santhosh-tekuri/jsonschema and
// renders its errors in the upstream wording of §8.4.
type jsonValidator struct {
	sch *jsonschema.Schema
}

// noLoader refuses every external reference: a schema must not make the
// broker read local files or the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema references are not allowed: %s", url)
}

// compileJSON parses and compiles a JSON Schema definition. A definition
// that is not a JSON object fails with encoding/json's text, as upstream.
func compileJSON(def []byte) (*jsonValidator, error) {
	var obj map[string]any
	if err := json.Unmarshal(def, &obj); err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(def))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	const url = "mem:///schema.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, err
	}
	return &jsonValidator{sch: sch}, nil
}

var printer = message.NewPrinter(language.English)

// Message categories, in the order messages are reported.
const (
	catRequired = iota
	catType
	catUnexpected
	catOther
)

type finding struct {
	cat  int
	text string
}

func (v *jsonValidator) validate(msg []byte) []string {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(msg))
	if err == nil {
		if _, ok := inst.(map[string]any); !ok {
			err = errors.New("not a JSON object")
		}
	}
	if err != nil {
		var obj map[string]any
		if jerr := json.Unmarshal(msg, &obj); jerr != nil {
			err = jerr // encoding/json's wording, as upstream
		}
		return []string{"invalid JSON message: " + err.Error()}
	}
	err = v.sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []string{"validation failed: " + err.Error()}
	}
	var found []finding
	collect(ve, inst, &found)
	sort.SliceStable(found, func(i, j int) bool { return found[i].cat < found[j].cat })
	out := make([]string, 0, len(found))
	seen := map[string]bool{}
	for _, f := range found {
		if !seen[f.text] {
			seen[f.text] = true
			out = append(out, f.text)
		}
	}
	if len(out) == 0 {
		out = append(out, "validation failed: "+ve.Error())
	}
	return out
}

// collect walks the error tree and renders its leaves.
func collect(ve *jsonschema.ValidationError, inst any, out *[]finding) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collect(c, inst, out)
		}
		return
	}
	at := func(field string) string {
		return strings.Join(append(append([]string(nil), ve.InstanceLocation...), field), ".")
	}
	path := strings.Join(ve.InstanceLocation, ".")
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, finding{catRequired, "missing required field: " + at(m)})
		}
	case *kind.Type:
		*out = append(*out, finding{catType, fmt.Sprintf("type mismatch at %s: expected %s, got %s",
			path, strings.Join(k.Want, " or "), jsonTypeName(lookup(inst, ve.InstanceLocation)))})
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, finding{catUnexpected, "unexpected field: " + at(p)})
		}
	case *kind.FalseSchema:
		*out = append(*out, finding{catUnexpected, "unexpected field: " + path})
	default:
		if path == "" {
			path = "(root)"
		}
		*out = append(*out, finding{catOther, fmt.Sprintf("validation failed at %s: %s", path,
			ve.ErrorKind.LocalizedString(printer))})
	}
}

// lookup returns the instance value at a location (object keys and
// array indexes as strings).
func lookup(v any, loc []string) any {
	for _, tok := range loc {
		switch x := v.(type) {
		case map[string]any:
			v = x[tok]
		case []any:
			var i int
			if _, err := fmt.Sscan(tok, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// jsonTypeName names a value's JSON type, telling whole numbers
// ("integer") from others ("number") as §8.4 does.
func jsonTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if _, err := x.Int64(); err == nil || !strings.ContainsAny(string(x), ".eE") {
			return "integer"
		}
		if f, err := x.Float64(); err == nil && f == float64(int64(f)) {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// newRequiredField implements the backward check of §8.1: every name in
// the new schema's top-level "required" must be a property of the old
// one. It returns the first offending name and false.
func newRequiredField(oldDef, newDef []byte) (string, bool) {
	var o struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	var n struct {
		Required []any `json:"required"`
	}
	if json.Unmarshal(oldDef, &o) != nil || json.Unmarshal(newDef, &n) != nil {
		return "", true
	}
	for _, r := range n.Required {
		s, ok := r.(string)
		if !ok {
			continue
		}
		if _, ok := o.Properties[s]; !ok {
			return s, false
		}
	}
	return "", true
}
