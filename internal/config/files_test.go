package config

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// TestShippedDefaultsFile keeps configs/flymq.json equal to Defaults, key
// for key, so the file operators copy documents the real defaults.
func TestShippedDefaultsFile(t *testing.T) {
	data, err := os.ReadFile("../../configs/flymq.json")
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("configs/flymq.json: %v", err)
	}
	if got != Defaults() {
		t.Fatalf("configs/flymq.json differs from Defaults():\n got %+v\nwant %+v", got, Defaults())
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	var present []string
	var flatten func(prefix string, m map[string]any)
	flatten = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				flatten(prefix+k+".", sub)
				continue
			}
			present = append(present, prefix+k)
		}
	}
	flatten("", raw)
	want := Keys()
	slices.Sort(present)
	slices.Sort(want)
	if !slices.Equal(present, want) {
		t.Fatalf("configs/flymq.json keys\n %v\nwant every key\n %v", present, want)
	}
}

func TestDevConfigValid(t *testing.T) {
	data, err := os.ReadFile("../../configs/dev.json")
	if err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("configs/dev.json: %v", err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatalf("configs/dev.json: %v", err)
	}
	if !c.Security.EncryptionEnabled || c.DataDir != "data/dev" {
		t.Fatalf("dev config: encryption %v, data dir %q", c.Security.EncryptionEnabled, c.DataDir)
	}
}
