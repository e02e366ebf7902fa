package hugemem

import "unsafe"

// Threshold is the size in bytes from which Make advises huge pages.
const Threshold = 4 << 20

// pageSize is the size of a transparent huge page.
const pageSize = 2 << 20

// Make returns a zeroed slice of n elements, backed by huge pages where the
// system provides them (see the package documentation).
func Make[T any](n int) []T {
	s := make([]T, n)
	Advise(s)
	return s
}

// Advise asks the kernel to back the whole 2 MiB pages inside s with huge
// pages (from the next page fault on; memory already touched is collapsed
// by the kernel's background thread). It reports whether the advice was
// given: false for slices under Threshold bytes, on systems without
// transparent huge pages, or if the kernel refused.
func Advise[T any](s []T) bool {
	var z T
	size := uintptr(len(s)) * unsafe.Sizeof(z)
	if size < Threshold {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	lo := (start + pageSize - 1) &^ (pageSize - 1)
	hi := (start + size) &^ (pageSize - 1)
	if hi <= lo {
		return false
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), size)
	return advise(b[lo-start : hi-start])
}
