package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// printJSON writes v as one line of JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.out)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// printf writes human-readable output.
func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.out, format, args...)
}

// text renders message bytes for humans: as-is when printable UTF-8,
// quoted otherwise so that binary data cannot corrupt the terminal.
func text(b []byte) string {
	if utf8.Valid(b) {
		printable := true
		for _, r := range string(b) {
			if !strconv.IsPrint(r) && r != '\t' {
				printable = false
				break
			}
		}
		if printable {
			return string(b)
		}
	}
	return strconv.Quote(string(b))
}

// jsonMessage is one message in JSON output. Key and value are strings
// when they are valid UTF-8; binary data goes to the *_base64 fields
// instead (and the string field is empty).
type jsonMessage struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      uint64 `json:"offset"`
	Key         string `json:"key"`
	KeyBase64   []byte `json:"key_base64,omitempty"`
	Value       string `json:"value"`
	ValueBase64 []byte `json:"value_base64,omitempty"`
}

func newJSONMessage(topic string, partition int32, offset uint64, key, value []byte) jsonMessage {
	m := jsonMessage{Topic: topic, Partition: partition, Offset: offset}
	if utf8.Valid(key) {
		m.Key = string(key)
	} else {
		m.KeyBase64 = key
	}
	if utf8.Valid(value) {
		m.Value = string(value)
	} else {
		m.ValueBase64 = value
	}
	return m
}

// printMessage prints one consumed message.
func (a *app) printMessage(topic string, partition int32, offset uint64, key, value []byte) error {
	if a.jsonOut {
		return a.printJSON(newJSONMessage(topic, partition, offset, key, value))
	}
	if len(key) > 0 {
		a.printf("%d\t%s\t%s\n", offset, text(key), text(value))
		return nil
	}
	a.printf("%d\t\t%s\n", offset, text(value))
	return nil
}
