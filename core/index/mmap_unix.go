//go:build unix

package index

import (
	"fmt"
	"os"
	"syscall"
)

// mappedFile is a read-only memory mapping of a whole file.
type mappedFile struct {
	data []byte
}

// mapFile maps path read-only; an empty file is an error (no index file is empty).
func mapFile(path string) (*mappedFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrCorrupt, path)
	}
	if size != int64(int(size)) {
		return nil, fmt.Errorf("index: %s is too large to map", path)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("index: mapping %s: %w", path, err)
	}
	return &mappedFile{data: data}, nil
}

func (m *mappedFile) close() error {
	if m.data == nil {
		return nil
	}
	err := syscall.Munmap(m.data)
	m.data = nil
	return err
}
