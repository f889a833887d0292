package schema

import (
	"errors"
	"fmt"
	"io"

	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/encoding/protowire"
)

// avroAPI bounds what a hostile message can make the decoder allocate:
// no string, bytes or array beyond one frame's worth.
var avroAPI = avro.Config{
	MaxByteSliceSize:  32 << 20,
	MaxSliceAllocSize: 1 << 20,
}.Freeze()

// avroValidator checks that a message decodes completely, with no bytes
// left over, under the registered Avro schema.
type avroValidator struct {
	schema avro.Schema
	err    error // schema parse error
}

func newAvroValidator(def []byte) *avroValidator {
	s, err := avro.ParseBytes(def)
	return &avroValidator{schema: s, err: err}
}

func (v *avroValidator) validate(msg []byte) []string {
	if v.err != nil {
		return []string{"Avro validation failed: invalid schema: " + v.err.Error()}
	}
	if len(msg) == 0 {
		return []string{"empty message"}
	}
	r := avro.NewReader(nil, 0, avro.WithReaderConfig(avroAPI)).Reset(msg)
	r.ReadNext(v.schema)
	switch {
	case errors.Is(r.Error, io.EOF):
		return []string{"Avro validation failed: unexpected end of message"}
	case r.Error != nil:
		return []string{"Avro validation failed: " + r.Error.Error()}
	}
	// With nothing left, Peek fails with EOF; anything else is a byte the
	// schema does not account for.
	if r.Peek(); r.Error == nil {
		return []string{"Avro validation failed: trailing bytes after the record"}
	}
	return nil
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
