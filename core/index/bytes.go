package index

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// littleEndian reports whether the host stores integers little-endian, so file bytes can be
// used in place (from the memory mapping) instead of being decoded into copies.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func aligned(b []byte, n uintptr) bool {
	return len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))%n == 0
}

// viewF32 returns b as float32s: in place when the host is little-endian and b aligned,
// else decoded into a copy. len(b) must be a multiple of 4.
func viewF32(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	if littleEndian && aligned(b, 4) {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func viewU32(b []byte) []uint32 {
	if len(b) == 0 {
		return nil
	}
	if littleEndian && aligned(b, 4) {
		return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), len(b)/4)
	}
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

func viewU16(b []byte) []uint16 {
	if len(b) == 0 {
		return nil
	}
	if littleEndian && aligned(b, 2) {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
	}
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return out
}

func viewU64(b []byte) []uint64 {
	if len(b) == 0 {
		return nil
	}
	if littleEndian && aligned(b, 8) {
		return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), len(b)/8)
	}
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}

func viewI64(b []byte) []int64 {
	u := viewU64(b)
	if len(u) == 0 {
		return nil
	}
	return unsafe.Slice((*int64)(unsafe.Pointer(&u[0])), len(u))
}

func f32Bytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

func u32Bytes(v []uint32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], x)
	}
	return out
}
