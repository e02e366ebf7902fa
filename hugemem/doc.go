// Package hugemem allocates the large arrays of a lattice computation —
// fermion fields, gauge links, neighbour tables — so that Linux backs them
// with transparent huge pages (2 MiB) where the kernel offers them on
// request (/sys/kernel/mm/transparent_hugepage/enabled set to madvise or
// always).
//
// The Go runtime does not ask for huge pages for its heap, and a
// stencil that reads neighbours spread over a large field then misses the
// TLB on most hops with 4 KiB pages. [Make] allocates on the Go heap (the
// memory stays under the garbage collector; large allocations start on a
// page boundary, so 64-byte alignment holds) and advises the kernel with
// madvise(MADV_HUGEPAGE) on the 2 MiB-aligned interior of arrays of at
// least [Threshold] bytes, before their first use. Elsewhere than Linux,
// and for small arrays, it is make.
package hugemem
