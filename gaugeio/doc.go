// Package gaugeio reads and writes gauge configurations: pfmpi's own format,
// NumPy .npy arrays and ILDG/LIME (SciDAC) files.
//
// A [Config] is the global configuration on one rank: the extents (direction
// 0 is time), Nc, and the links in global lexicographic site order (direction 0
// slowest), each site's Nd links in direction order, each link an Nc×Nc
// row-major complex matrix — the order field.Gather produces for a
// gauge.Field. [Save] and [Load] move a distributed gauge.Field to and from a
// file on any process grid: rank 0 gathers and writes, or reads and scatters.
//
// # Formats
//
// The reader recognises the format by the file's first bytes; the writer
// takes it from the extension ([FormatOf]).
//
//   - pfmpi (.pfg): the line "pfmpi-gauge", a one-line JSON header (format
//     version, dims, nc, group, payload size, CRC-32C of the payload,
//     average plaquette, β when known), then the zstd-compressed payload:
//     the links as little-endian complex128 in Config order.
//   - NumPy (.npy): a complex128 array of shape [Nd, L₀, L₁(, L₂, L₃), Nc, Nc]
//     in C order: index order exactly this, direction 0 time. No checksum;
//     every link is checked to be a group element on load.
//   - ILDG/LIME (.lime, .ildg): LIME records (big-endian). A 4D SU(3) field
//     is written as an ILDG file: SciDAC private file and record XML,
//     "ildg-format", "ildg-binary-data" (big-endian float64; sites with x
//     fastest and t slowest; links U_x, U_y, U_z, U_t; row-major 3×3) and
//     "scidac-checksum", then "ildg-data-lfn". pfmpi's directions (t, x, y,
//     z) = (0, 1, 2, 3) map to ILDG's (t; x, y, z). Other fields use records
//     "pfmpi-format" (JSON) and "pfmpi-binary-data" (big-endian float64 in
//     Config order) with a "scidac-checksum". ILDG files in single precision
//     are read as well.
//
// The SciDAC checksum: for the site of lexicographic rank r in the file's
// order, c = CRC-32 (IEEE) of the site's bytes as stored; suma ⊕= c ⋘ (r mod
// 29) and sumb ⊕= c ⋘ (r mod 31), with ⋘ a 32-bit left rotation.
//
// # Integrity
//
// Files are written atomically (temporary file, fsync, rename). Reading checks
// what each format carries (magic numbers, versions, sizes, checksums) and
// reports a truncated or corrupted file, or a geometry that does not match the
// field, as an error that names the file. Load also checks that every link is
// a group element and, where the header records it, that the average plaquette
// agrees: a file is never silently loaded as a wrong field.
package gaugeio
