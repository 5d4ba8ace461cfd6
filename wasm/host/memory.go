package wasmhost

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// PageSize is the size of a WebAssembly memory page.
const PageSize = 65536

// Memory is a linear memory owned by the host and imported by guest instances (as
// env.memory, clang's default import for a module linked with --import-memory). Every
// instance of a pool built on a Memory reads and writes the same bytes: data placed here once
// (an index shard's codes) is shared by all of them instead of copied into each. Its size is
// fixed at creation (minimum = maximum), so it never grows and never moves while guests run.
type Memory struct {
	mod api.Module
	mem api.Memory
}

// NewMemory creates a memory of pages 64 KiB pages.
func (rt *Runtime) NewMemory(ctx context.Context, pages uint32) (*Memory, error) {
	if pages == 0 || pages > rt.limit {
		return nil, fmt.Errorf("wasmhost: a memory of %d pages is outside 1..%d (the runtime's memory limit)", pages, rt.limit)
	}
	c, err := rt.r.CompileModule(ctx, memoryModule(pages))
	if err != nil {
		return nil, fmt.Errorf("wasmhost: memory module: %w", err)
	}
	// The empty name makes the module anonymous: any number of memories can coexist.
	mod, err := rt.r.InstantiateModule(ctx, c, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		_ = c.Close(ctx)
		return nil, fmt.Errorf("wasmhost: allocating %d pages: %w", pages, err)
	}
	// Instances keep what they use alive; the compiled form of a memory-only module is tiny.
	_ = c.Close(ctx)
	return &Memory{mod: mod, mem: mod.Memory()}, nil
}

// Size is the memory's size in bytes.
func (m *Memory) Size() uint64 { return uint64(m.mem.Size()) }

// Write copies b into the memory at offset off.
func (m *Memory) Write(off uint32, b []byte) error {
	if !m.mem.Write(off, b) {
		return fmt.Errorf("wasmhost: writing %d bytes at %d overruns a %d-byte memory", len(b), off, m.mem.Size())
	}
	return nil
}

// View returns the n bytes at off without copying; they stay valid while the memory is open.
func (m *Memory) View(off, n uint32) ([]byte, error) {
	b, ok := m.mem.Read(off, n)
	if !ok {
		return nil, fmt.Errorf("wasmhost: reading %d bytes at %d overruns a %d-byte memory", n, off, m.mem.Size())
	}
	return b, nil
}

// Close frees the memory. Close the pools importing it first.
func (m *Memory) Close(ctx context.Context) error { return m.mod.Close(ctx) }

// memoryModule is the binary of (module (memory (export "memory") pages pages)).
func memoryModule(pages uint32) []byte {
	limits := []byte{0x01} // flag: minimum and maximum present
	limits = binary.AppendUvarint(limits, uint64(pages))
	limits = binary.AppendUvarint(limits, uint64(pages))
	memSec := append([]byte{0x01}, limits...) // one memory
	expSec := []byte{0x01, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00}
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, 0x05)
	out = binary.AppendUvarint(out, uint64(len(memSec)))
	out = append(out, memSec...)
	out = append(out, 0x07)
	out = binary.AppendUvarint(out, uint64(len(expSec)))
	return append(out, expSec...)
}
