package vec

import "golang.org/x/sys/cpu"

// HalfKernel reports whether DotHalf runs an assembly kernel here: VCVTPH2PS (F16C) and
// VFMADD231PS (FMA) on YMM registers (AVX2, which x/sys/cpu sets only when the OS saves
// them). DotBytes's kernel needs AVX2 and FMA only.
var HalfKernel = avx2 && cpu.X86.HasF16C

// bytesKernel reports whether DotBytes runs dotBytesAVX2 here.
var bytesKernel = avx2

// dotHalfAVX2 returns sum_i a[i]*float32(b[i]) for n = len(a), a multiple of 8.
//
//go:noescape
func dotHalfAVX2(a *float32, b *uint16, n int) float32

// dotBytesAVX2 returns sum_i a[i]*float32(code[i]) for n = len(a), a multiple of 8.
//
//go:noescape
func dotBytesAVX2(a *float32, code *byte, n int) float32

func dotHalfKernel(a []float32, b []uint16) float32 { return dotHalfAVX2(&a[0], &b[0], len(a)) }

func dotBytesKernel(a []float32, code []byte) float32 {
	return dotBytesAVX2(&a[0], &code[0], len(a))
}
