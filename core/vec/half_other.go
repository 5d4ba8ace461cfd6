//go:build !amd64

package vec

// HalfKernel is false off amd64: DotHalf converts in Go, slower than Dot on float32.
const HalfKernel = false

func dotHalfKernel([]float32, Half) float32 { panic("vec: no half-precision kernel") }
