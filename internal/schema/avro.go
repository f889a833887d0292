package schema

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Avro support is a decoder of the binary encoding (Avro 1.11
// specification, "Binary Encoding") driven by the parsed schema: a
// message is valid when it decodes completely, with no bytes left over.
// A library decoder (hamba/avro) was tried and dropped: decoding into
// generic values, a forged map block count made it loop without bound, a
// denial of service on the produce path. This walk caps depth and items.

// Limits that keep a hostile schema or message from looping or recursing
// without bound.
const (
	avroMaxDepth = 64
	avroMaxItems = 1 << 20 // array/map items per message
)

type avroNode struct {
	kind    string // primitive name, record, enum, array, map, fixed, union
	fields  []*avroNode
	items   *avroNode // array items, map values
	symbols int       // enum
	size    int       // fixed
	union   []*avroNode
	ref     string // named reference, resolved lazily
}

type avroValidator struct {
	root  *avroNode
	named map[string]*avroNode
	err   error // schema parse error
}

func newAvroValidator(def []byte) *avroValidator {
	v := &avroValidator{named: map[string]*avroNode{}}
	var doc any
	if err := json.Unmarshal(def, &doc); err != nil {
		// A bare primitive name such as `"string"` is JSON; `string` is
		// accepted as well.
		doc = string(def)
	}
	v.root, v.err = v.parse(doc, "", 0)
	return v
}

func (v *avroValidator) parse(doc any, ns string, depth int) (*avroNode, error) {
	if depth > avroMaxDepth {
		return nil, errors.New("schema nested too deeply")
	}
	switch d := doc.(type) {
	case string:
		switch d {
		case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
			return &avroNode{kind: d}, nil
		}
		return &avroNode{kind: "ref", ref: d}, nil
	case []any:
		n := &avroNode{kind: "union"}
		for _, b := range d {
			c, err := v.parse(b, ns, depth+1)
			if err != nil {
				return nil, err
			}
			n.union = append(n.union, c)
		}
		return n, nil
	case map[string]any:
		t, _ := d["type"].(string)
		if t == "" {
			if inner, ok := d["type"]; ok {
				return v.parse(inner, ns, depth+1)
			}
			return nil, errors.New("missing type")
		}
		if s, ok := d["namespace"].(string); ok {
			ns = s
		}
		name, _ := d["name"].(string)
		n := &avroNode{kind: t}
		switch t {
		case "record", "error":
			n.kind = "record"
			v.define(name, ns, n)
			fs, _ := d["fields"].([]any)
			for _, f := range fs {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, errors.New("record field is not an object")
				}
				c, err := v.parse(fm["type"], ns, depth+1)
				if err != nil {
					return nil, err
				}
				n.fields = append(n.fields, c)
			}
		case "enum":
			v.define(name, ns, n)
			syms, _ := d["symbols"].([]any)
			n.symbols = len(syms)
		case "fixed":
			v.define(name, ns, n)
			sz, _ := d["size"].(float64)
			if sz < 0 || sz > math.MaxInt32 {
				return nil, errors.New("invalid fixed size")
			}
			n.size = int(sz)
		case "array", "map":
			key := "items"
			if t == "map" {
				key = "values"
			}
			c, err := v.parse(d[key], ns, depth+1)
			if err != nil {
				return nil, err
			}
			n.items = c
		default:
			// A primitive with attributes, e.g. a logical type.
			return v.parse(t, ns, depth+1)
		}
		return n, nil
	}
	return nil, fmt.Errorf("unexpected schema element %T", doc)
}

func (v *avroValidator) define(name, ns string, n *avroNode) {
	if name == "" {
		return
	}
	v.named[name] = n
	if ns != "" {
		v.named[ns+"."+name] = n
	}
}

func (v *avroValidator) validate(msg []byte) []string {
	if v.err != nil {
		return []string{"Avro validation failed: invalid schema: " + v.err.Error()}
	}
	if len(msg) == 0 {
		return []string{"empty message"}
	}
	d := avroDecoder{v: v, p: msg}
	if err := d.value(v.root, 0); err != nil {
		return []string{"Avro validation failed: " + err.Error()}
	}
	if len(d.p) != 0 {
		return []string{fmt.Sprintf("Avro validation failed: %d trailing bytes", len(d.p))}
	}
	return nil
}

type avroDecoder struct {
	v     *avroValidator
	p     []byte
	items int
}

var errAvroShort = errors.New("unexpected end of message")

func (d *avroDecoder) long() (int64, error) {
	u, n := binary.Uvarint(d.p)
	if n <= 0 {
		return 0, errAvroShort
	}
	d.p = d.p[n:]
	return int64(u>>1) ^ -int64(u&1), nil
}

func (d *avroDecoder) skip(n int64) error {
	if n < 0 || n > int64(len(d.p)) {
		return errAvroShort
	}
	d.p = d.p[n:]
	return nil
}

func (d *avroDecoder) value(n *avroNode, depth int) error {
	if depth > avroMaxDepth {
		return errors.New("value nested too deeply")
	}
	switch n.kind {
	case "null":
		return nil
	case "boolean":
		if len(d.p) == 0 {
			return errAvroShort
		}
		if d.p[0] > 1 {
			return fmt.Errorf("invalid boolean byte %d", d.p[0])
		}
		d.p = d.p[1:]
		return nil
	case "int":
		x, err := d.long()
		if err == nil && (x < math.MinInt32 || x > math.MaxInt32) {
			err = errors.New("int out of range")
		}
		return err
	case "long":
		_, err := d.long()
		return err
	case "float":
		return d.skip(4)
	case "double":
		return d.skip(8)
	case "bytes", "string":
		l, err := d.long()
		if err != nil {
			return err
		}
		return d.skip(l)
	case "fixed":
		return d.skip(int64(n.size))
	case "enum":
		i, err := d.long()
		if err == nil && (i < 0 || i >= int64(n.symbols)) {
			err = fmt.Errorf("enum index %d out of range", i)
		}
		return err
	case "record":
		for _, f := range n.fields {
			if err := d.value(f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case "union":
		i, err := d.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.union)) {
			return fmt.Errorf("union index %d out of range", i)
		}
		return d.value(n.union[i], depth+1)
	case "array", "map":
		for {
			cnt, err := d.long()
			if err != nil {
				return err
			}
			if cnt == 0 {
				return nil
			}
			if cnt < 0 {
				cnt = -cnt
				if _, err := d.long(); err != nil { // block size in bytes
					return err
				}
			}
			for ; cnt > 0; cnt-- {
				if d.items++; d.items > avroMaxItems {
					return errors.New("too many items")
				}
				if n.kind == "map" {
					l, err := d.long()
					if err == nil {
						err = d.skip(l)
					}
					if err != nil {
						return err
					}
				}
				if err := d.value(n.items, depth+1); err != nil {
					return err
				}
			}
		}
	case "ref":
		t := d.v.named[n.ref]
		if t == nil {
			return fmt.Errorf("unknown type %q", n.ref)
		}
		return d.value(t, depth+1)
	}
	return fmt.Errorf("unsupported type %q", n.kind)
}

// protobufValidator scans the protobuf wire format (§8.4: the schema is
// not compiled; only the encoding is checked).
type protobufValidator struct{}

func (protobufValidator) validate(msg []byte) []string {
	if len(msg) == 0 {
		return []string{"empty message"}
	}
	if err := scanProtobuf(msg); err != nil {
		return []string{"invalid Protobuf wire format: " + err.Error()}
	}
	return nil
}

// scanProtobuf checks that p is a sequence of well-formed fields, groups
// closed by their own field number.
func scanProtobuf(p []byte) error {
	for len(p) > 0 {
		num, typ, n := protowire.ConsumeTag(p)
		if n < 0 {
			return fmt.Errorf("field key: %w", protowire.ParseError(n))
		}
		p = p[n:]
		if typ == protowire.EndGroupType {
			return fmt.Errorf("unmatched end group %d", num)
		}
		m := protowire.ConsumeFieldValue(num, typ, p)
		if m < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(m))
		}
		p = p[m:]
	}
	return nil
}
