//go:build !amd64

package vec

// HalfKernel is false off amd64: DotHalf converts in Go, slower than Dot on float32.
const HalfKernel = false

// bytesKernel is false off amd64: DotBytes is a Go loop.
const bytesKernel = false

func dotHalfKernel([]float32, []uint16) float32 { panic("vec: no half-precision kernel") }

func dotBytesKernel([]float32, []byte) float32 { panic("vec: no byte kernel") }
