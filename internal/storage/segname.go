package storage

// ParseSegmentName returns the base offset of a segment file name
// ("00000000000000000042.log"), or false if name is not a segment. Tools
// that walk a data dir offline (flymq keys) use it so that they and the
// log agree on which files are segments.
func ParseSegmentName(name string) (base uint64, ok bool) { return parseSegmentName(name) }

// SegmentFileName returns the file name of the segment starting at base.
func SegmentFileName(base uint64) string { return segmentName(base) + ".log" }
