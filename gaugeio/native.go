package gaugeio

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/klauspost/compress/zstd"
)

const (
	nativeMagic   = "pfmpi-gauge\n"
	nativeVersion = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// nativeHeader is the JSON line after the magic.
type nativeHeader struct {
	Format       string   `json:"format"`
	Version      int      `json:"version"`
	Dims         []int    `json:"dims"`
	Nc           int      `json:"nc"`
	Group        string   `json:"group"`
	Order        string   `json:"order"`
	Compression  string   `json:"compression"`
	PayloadBytes int64    `json:"payload_bytes"`
	CRC32C       string   `json:"crc32c"`
	Plaquette    *float64 `json:"plaquette,omitempty"`
	Beta         float64  `json:"beta,omitempty"`
	Info         string   `json:"info,omitempty"`
}

const nativeOrder = "sites in C order of dims (direction 0 slowest), then direction, then Nc×Nc row-major; complex128 little-endian"

// encodeLE streams values as little-endian float64 pairs into w.
func encodeLE(w io.Writer, values []complex128) error {
	buf := make([]byte, 0, 1<<16)
	for _, z := range values {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(real(z)))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(imag(z)))
		if len(buf) == cap(buf) {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := w.Write(buf)
	return err
}

func writeNative(w io.Writer, c *Config) error {
	payload := int64(len(c.Links)) * 16
	crc := crc32.New(castagnoli)
	if err := encodeLE(crc, c.Links); err != nil {
		return err
	}
	h := nativeHeader{
		Format: "pfmpi-gauge", Version: nativeVersion, Dims: c.Dims, Nc: c.Nc, Group: Group(c.Nc),
		Order: nativeOrder, Compression: "zstd", PayloadBytes: payload,
		CRC32C: fmt.Sprintf("%08x", crc.Sum32()), Beta: c.Meta.Beta, Info: c.Meta.Info,
	}
	if !math.IsNaN(c.Meta.Plaquette) {
		p := c.Meta.Plaquette
		h.Plaquette = &p
	}
	line, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, nativeMagic); err != nil {
		return err
	}
	if _, err := w.Write(append(line, '\n')); err != nil {
		return err
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	if err := encodeLE(zw, c.Links); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

func readNative(r io.Reader) (*Config, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(nativeMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != nativeMagic {
		return nil, errors.New("not a pfmpi gauge file (bad magic)")
	}
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("truncated header: %w", err)
	}
	var h nativeHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, fmt.Errorf("corrupted header: %w", err)
	}
	if h.Format != "pfmpi-gauge" || h.Version != nativeVersion {
		return nil, fmt.Errorf("format %q version %d; this pfmpi reads pfmpi-gauge version %d", h.Format, h.Version, nativeVersion)
	}
	if h.Compression != "zstd" {
		return nil, fmt.Errorf("compression %q; this pfmpi reads zstd", h.Compression)
	}
	c := &Config{Dims: h.Dims, Nc: h.Nc, Meta: Meta{Beta: h.Beta, Plaquette: math.NaN(), Format: Native, Info: h.Info}}
	if h.Plaquette != nil {
		c.Meta.Plaquette = *h.Plaquette
	}
	if err := plausible(c.Dims, c.Nc); err != nil {
		return nil, fmt.Errorf("header %w", err)
	}
	n := int64(c.Volume() * len(c.Dims) * c.Nc * c.Nc)
	if h.PayloadBytes != 16*n {
		return nil, fmt.Errorf("header says %d payload bytes; dims %v with Nc = %d need %d", h.PayloadBytes, c.Dims, c.Nc, 16*n)
	}
	zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	// The links grow as the payload decodes: a header claiming more than
	// the file holds costs no more memory than the file.
	c.Links = make([]complex128, 0, min(n, 1<<16))
	crc := crc32.New(castagnoli)
	buf := make([]byte, 1<<16)
	for i := int64(0); i < n; {
		chunk := min(int64(len(buf)/16), n-i)
		b := buf[:16*chunk]
		if _, err := io.ReadFull(zr, b); err != nil {
			return nil, fmt.Errorf("payload truncated or corrupted after %d of %d bytes: %w", 16*i, 16*n, err)
		}
		crc.Write(b)
		for k := int64(0); k < chunk; k++ {
			re := math.Float64frombits(binary.LittleEndian.Uint64(b[16*k:]))
			im := math.Float64frombits(binary.LittleEndian.Uint64(b[16*k+8:]))
			c.Links = append(c.Links, complex(re, im))
		}
		i += chunk
	}
	var extra [1]byte
	if m, err := zr.Read(extra[:]); m != 0 || (err != nil && err != io.EOF) {
		return nil, fmt.Errorf("payload longer than the header says, or corrupted: %v", err)
	}
	if got := fmt.Sprintf("%08x", crc.Sum32()); got != h.CRC32C {
		return nil, fmt.Errorf("checksum mismatch: header records CRC-32C %s, payload gives %s (the file is corrupted)", h.CRC32C, got)
	}
	c.Meta.Checksum = "crc32c " + h.CRC32C + " ok"
	return c, nil
}
