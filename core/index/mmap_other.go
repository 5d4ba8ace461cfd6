//go:build !unix

package index

import (
	"fmt"
	"os"
)

// mappedFile holds a whole file in memory where memory mapping is not available.
type mappedFile struct {
	data []byte
}

func mapFile(path string) (*mappedFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrCorrupt, path)
	}
	return &mappedFile{data: data}, nil
}

func (m *mappedFile) close() error {
	m.data = nil
	return nil
}
