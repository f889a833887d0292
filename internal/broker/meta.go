package broker

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/flymq/flymq/internal/crypto"
)

// topicMetaFile is the sealed per-topic metadata file.
const topicMetaFile = "topic.json"

// topicMetaVersion is the plaintext format version inside topic.json.
const topicMetaVersion = 1

// topicMeta is the plaintext of topic.json. Zero retention values mean "the
// broker's configured default", so a config change applies to old topics.
type topicMeta struct {
	Version        int    `json:"version"`
	Name           string `json:"name"`
	Partitions     int32  `json:"partitions"`
	CreatedMs      int64  `json:"created_ms"`
	RetentionBytes int64  `json:"retention_bytes,omitempty"`
	RetentionMs    int64  `json:"retention_ms,omitempty"`
}

// TopicMetaPurpose is the sealed-blob purpose of the topic.json in the
// topic directory dirName. It binds the blob to its directory, so a blob
// copied into another topic's directory fails to open instead of creating
// a second topic with the same name. internal/keys re-seals topic.json
// with it: changing it strands every existing topic.json.
func TopicMetaPurpose(dirName string) string {
	return "flymq/topic.json/v1/" + dirName
}

func encodeTopicMeta(m topicMeta) ([]byte, error) {
	return json.Marshal(m)
}

// decodeTopicMeta parses and checks the plaintext of topic.json.
func decodeTopicMeta(b []byte) (topicMeta, error) {
	var m topicMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return topicMeta{}, fmt.Errorf("decode topic metadata: %w", err)
	}
	if m.Version != topicMetaVersion {
		return topicMeta{}, fmt.Errorf("topic metadata version %d not supported", m.Version)
	}
	if err := ValidateTopicName(m.Name); err != nil {
		return topicMeta{}, fmt.Errorf("topic metadata: %w", err)
	}
	if m.Partitions < 1 {
		return topicMeta{}, fmt.Errorf("topic metadata: %w: %d", ErrInvalidPartitionCount, m.Partitions)
	}
	return m, nil
}

// writeTopicMeta seals m and writes it atomically into dir.
func writeTopicMeta(kr *crypto.Keyring, dir string, m topicMeta) error {
	plain, err := encodeTopicMeta(m)
	if err != nil {
		return fmt.Errorf("encode topic metadata: %w", err)
	}
	blob, err := crypto.SealBlob(kr, TopicMetaPurpose(filepath.Base(dir)), plain)
	clear(plain)
	if err != nil {
		return fmt.Errorf("seal topic metadata: %w", err)
	}
	if err := crypto.WriteFileAtomic(filepath.Join(dir, topicMetaFile), blob, 0o600); err != nil {
		return fmt.Errorf("write topic metadata: %w", err)
	}
	return nil
}
