//go:build !linux && !darwin

package observe

import "errors"

func diskSpace(string) (avail, size uint64, err error) {
	return 0, 0, errors.New("disk space is not measured on this platform")
}
