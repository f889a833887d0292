// Package broker owns topics, partitions, consumer groups and committed
// offsets on top of internal/storage, with the semantics of
// protocol/core.md §6–§8: the partitioner, FETCH scanning and filters,
// subscribe and reset modes, and the error values the server turns into
// wire texts.
//
// On disk (DESIGN.md §3), everything below the data dir:
//
//	KEYCHECK                        verified by crypto.CheckDataDir first
//	topics/t-<id>/topic.json        sealed: name, partitions, creation time
//	topics/t-<id>/<partition>/...   one storage.Partition each
//	groups/offsets.snap             sealed snapshot of committed offsets
//	groups/offsets.log              sealed, CRC-framed commits since then
//
// With encryption on, <id> is random, so the directory tree reveals no
// topic name; with it off, <id> is a readable escape of the name. A topic
// is created by writing topic.json first and deleted by removing it
// first, so a crash leaves either a whole topic or a directory without
// topic.json, which the next Open removes.
//
// Concurrency: the topic map sits behind one RWMutex held only for map
// access; each topic has its own RWMutex, read-locked for every produce,
// consume and fetch and write-locked only by DeleteTopic and Close, so
// partitions never close under a running Read or Append and requests on
// different topics never contend. Committed offsets have their own lock
// (groupstore.go), with fsyncs shared between concurrent commits.
package broker
