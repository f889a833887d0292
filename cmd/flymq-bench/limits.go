package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Limits are the raw capabilities of this machine that bound a broker,
// measured in the same run as the workload so a report can say how close
// to them the broker gets.
type Limits struct {
	AESSealPerSec float64 // AES-256-GCM seals of one message, one core
	FsyncPerSec   float64 // 4 KiB append + fsync in the temp dir
	LoopbackP50   time.Duration
}

// measureLimits runs the three probes; dir is where fsyncs are measured
// (the broker's data directory's file system).
func measureLimits(size int, dir string) (Limits, error) {
	var l Limits
	var err error
	if l.AESSealPerSec, err = aesSealRate(size, 300*time.Millisecond); err != nil {
		return l, err
	}
	if l.FsyncPerSec, err = fsyncRate(dir, time.Second, 2000); err != nil {
		return l, err
	}
	if l.LoopbackP50, err = loopbackRTT(3000); err != nil {
		return l, err
	}
	return l, nil
}

// aesSealRate seals size-byte messages in place with AES-256-GCM on one
// goroutine for about d and returns seals per second.
func aesSealRate(size int, d time.Duration) (float64, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return 0, fmt.Errorf("aes probe: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return 0, fmt.Errorf("aes probe: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return 0, fmt.Errorf("aes probe: %w", err)
	}
	buf := make([]byte, size, size+gcm.Overhead())
	nonce := make([]byte, gcm.NonceSize())
	var aad [16]byte
	start := time.Now()
	n := 0
	for {
		for range 256 {
			binary.BigEndian.PutUint64(nonce[4:], uint64(n))
			n++
			gcm.Seal(buf[:0], nonce, buf[:size], aad[:])
		}
		if el := time.Since(start); el >= d {
			return float64(n) / el.Seconds(), nil
		}
	}
}

// fsyncRate appends 4 KiB and fsyncs, repeatedly, for about d or max
// iterations, in a scratch file under dir, and returns fsyncs per second.
func fsyncRate(dir string, d time.Duration, max int) (float64, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return 0, fmt.Errorf("fsync probe: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	start := time.Now()
	n := 0
	for n < max {
		if _, err := f.Write(block); err != nil {
			return 0, fmt.Errorf("fsync probe: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("fsync probe: %w", err)
		}
		n++
		if time.Since(start) >= d {
			break
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// loopbackRTT ping-pongs 8 bytes over a TCP connection on 127.0.0.1 n
// times (after a warm-up) and returns the median round trip.
func loopbackRTT(n int) (time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loopback probe: %w", err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var b [8]byte
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			if _, err := c.Write(b[:]); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("loopback probe: %w", err)
	}
	defer c.Close()
	var b [8]byte
	samples := make([]time.Duration, 0, n)
	const warmup = 200
	for i := range n + warmup {
		t := time.Now()
		if _, err := c.Write(b[:]); err != nil {
			return 0, fmt.Errorf("loopback probe: %w", err)
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return 0, fmt.Errorf("loopback probe: %w", err)
		}
		if i >= warmup {
			samples = append(samples, time.Since(t))
		}
	}
	slices.Sort(samples)
	return samples[len(samples)/2], nil
}

// scratchDir is where probes and spawned servers put their files.
func scratchDir(parent string) string {
	if parent == "" {
		return os.TempDir()
	}
	return filepath.Clean(parent)
}
