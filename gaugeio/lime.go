package gaugeio

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// LIME (Lattice QCD Interchange Message Encapsulation): a file is a sequence
// of records grouped into messages. Each record is a 144-byte big-endian
// header (magic 0x456789ab, version 1, flags with bit 15 = message begin and
// bit 14 = message end, the data length as uint64, a NUL-padded 128-byte type
// name) followed by the data, NUL-padded to a multiple of 8 bytes.

const (
	limeMagic   = 0x456789ab
	limeVersion = 1
	limeHeader  = 144
	flagMB      = 1 << 15
	flagME      = 1 << 14
)

type limeRecord struct {
	typ  string
	data []byte
}

func writeLIMEMessages(w io.Writer, messages [][]limeRecord) error {
	var hdr [limeHeader]byte
	var pad [8]byte
	for _, msg := range messages {
		for i, rec := range msg {
			clear(hdr[:])
			binary.BigEndian.PutUint32(hdr[0:], limeMagic)
			binary.BigEndian.PutUint16(hdr[4:], limeVersion)
			var flags uint16
			if i == 0 {
				flags |= flagMB
			}
			if i == len(msg)-1 {
				flags |= flagME
			}
			binary.BigEndian.PutUint16(hdr[6:], flags)
			binary.BigEndian.PutUint64(hdr[8:], uint64(len(rec.data)))
			copy(hdr[16:], rec.typ)
			if _, err := w.Write(hdr[:]); err != nil {
				return err
			}
			if _, err := w.Write(rec.data); err != nil {
				return err
			}
			if _, err := w.Write(pad[:(8-len(rec.data)%8)%8]); err != nil {
				return err
			}
		}
	}
	return nil
}

// readLIMERecords reads every record; a file that ends inside a record is an
// error.
func readLIMERecords(r io.Reader) ([]limeRecord, error) {
	var recs []limeRecord
	var hdr [limeHeader]byte
	for {
		n, err := io.ReadFull(r, hdr[:])
		if err == io.EOF && n == 0 {
			if len(recs) == 0 {
				return nil, errors.New("empty LIME file")
			}
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("LIME file truncated inside the header of record %d", len(recs)+1)
		}
		if m := binary.BigEndian.Uint32(hdr[0:]); m != limeMagic {
			return nil, fmt.Errorf("LIME record %d: bad magic %08x (corrupted file)", len(recs)+1, m)
		}
		if v := binary.BigEndian.Uint16(hdr[4:]); v != limeVersion {
			return nil, fmt.Errorf("LIME record %d: version %d, this pfmpi reads version %d", len(recs)+1, v, limeVersion)
		}
		length := binary.BigEndian.Uint64(hdr[8:])
		typ := string(bytes.TrimRight(hdr[16:], "\x00"))
		if length > 1<<40 {
			return nil, fmt.Errorf("LIME record %d (%s): implausible length %d (corrupted file)", len(recs)+1, typ, length)
		}
		// Read into a growing buffer: a damaged length costs no more
		// memory than the file holds.
		var buf bytes.Buffer
		padded := int64(length + (8-length%8)%8)
		if n, err := io.CopyN(&buf, r, padded); err != nil || n != padded {
			return nil, fmt.Errorf("LIME file truncated inside record %d (%s): %d bytes expected", len(recs)+1, typ, length)
		}
		recs = append(recs, limeRecord{typ: typ, data: buf.Bytes()[:length]})
	}
}

// scidacChecksum accumulates the SciDAC checksum of sites in any order.
type scidacChecksum struct{ a, b uint32 }

func (c *scidacChecksum) add(rank uint64, site []byte) {
	work := crc32.ChecksumIEEE(site)
	c.a ^= bits.RotateLeft32(work, int(rank%29))
	c.b ^= bits.RotateLeft32(work, int(rank%31))
}

type checksumXML struct {
	XMLName xml.Name `xml:"scidacChecksum"`
	Version string   `xml:"version"`
	SumA    string   `xml:"suma"`
	SumB    string   `xml:"sumb"`
}

func (c scidacChecksum) record() limeRecord {
	b, _ := xml.Marshal(checksumXML{Version: "1.0", SumA: fmt.Sprintf("%x", c.a), SumB: fmt.Sprintf("%x", c.b)})
	return limeRecord{"scidac-checksum", append([]byte(xml.Header), b...)}
}

// verify compares c with a scidac-checksum record.
func (c scidacChecksum) verify(rec []byte) (string, error) {
	var x checksumXML
	if err := xml.Unmarshal(rec, &x); err != nil {
		return "", fmt.Errorf("unreadable scidac-checksum record: %w", err)
	}
	a, errA := strconv.ParseUint(strings.TrimSpace(x.SumA), 16, 32)
	b, errB := strconv.ParseUint(strings.TrimSpace(x.SumB), 16, 32)
	if errA != nil || errB != nil {
		return "", fmt.Errorf("unreadable scidac-checksum values %q, %q", x.SumA, x.SumB)
	}
	if uint32(a) != c.a || uint32(b) != c.b {
		return "", fmt.Errorf("SciDAC checksum mismatch: file records suma %x sumb %x, data give %x %x (the file is corrupted)", a, b, c.a, c.b)
	}
	return fmt.Sprintf("scidac suma %x sumb %x ok", c.a, c.b), nil
}

// pfmpiInfo is pfmpi's own metadata record, ignored by other readers.
type pfmpiInfo struct {
	Beta      float64  `json:"beta,omitempty"`
	Plaquette *float64 `json:"plaquette,omitempty"`
	Info      string   `json:"info,omitempty"`
}

func infoRecord(m Meta) limeRecord {
	in := pfmpiInfo{Beta: m.Beta, Info: m.Info}
	if !math.IsNaN(m.Plaquette) {
		p := m.Plaquette
		in.Plaquette = &p
	}
	b, _ := json.Marshal(in)
	return limeRecord{"pfmpi-info", b}
}

// pfmpiFormat describes the binary record of fields that are not 4D SU(3).
type pfmpiFormat struct {
	Dims  []int  `json:"dims"`
	Nc    int    `json:"nc"`
	Order string `json:"order"`
}

const limeOrder = "sites in C order of dims (direction 0 slowest), then direction, then Nc×Nc row-major; complex128 big-endian"

// ildgFormat is the "ildg-format" record.
type ildgFormat struct {
	XMLName   xml.Name `xml:"ildgFormat"`
	Xmlns     string   `xml:"xmlns,attr,omitempty"`
	Version   string   `xml:"version"`
	Field     string   `xml:"field"`
	Precision int      `xml:"precision"`
	LX        int      `xml:"lx"`
	LY        int      `xml:"ly"`
	LZ        int      `xml:"lz"`
	LT        int      `xml:"lt"`
}

func isILDG(c *Config) bool { return len(c.Dims) == 4 && c.Nc == 3 }

// ildgSite returns, for the site of ILDG rank r (x fastest, t slowest), the
// site's index in Config order; dims are pfmpi's (t, x, y, z).
func ildgSite(r int, dims []int) int {
	lx, ly, lz := dims[1], dims[2], dims[3]
	x := r % lx
	y := r / lx % ly
	z := r / (lx * ly) % lz
	t := r / (lx * ly * lz)
	return ((t*lx+x)*ly+y)*lz + z
}

func appendBE(buf []byte, z complex128) []byte {
	buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(real(z)))
	return binary.BigEndian.AppendUint64(buf, math.Float64bits(imag(z)))
}

func writeLIME(w io.Writer, c *Config) error {
	nd, n := len(c.Dims), c.Nc*c.Nc
	v := c.Volume()
	siteBytes := nd * n * 16
	data := make([]byte, 0, v*siteBytes)
	var sum scidacChecksum
	if isILDG(c) {
		for r := 0; r < v; r++ {
			s := ildgSite(r, c.Dims)
			start := len(data)
			for muILDG := 0; muILDG < 4; muILDG++ {
				mu := (muILDG + 1) % 4 // ILDG x, y, z, t = pfmpi 1, 2, 3, 0
				for _, z := range c.Links[(s*nd+mu)*n : (s*nd+mu+1)*n] {
					data = appendBE(data, z)
				}
			}
			sum.add(uint64(r), data[start:])
		}
		lt, lx, ly, lz := c.Dims[0], c.Dims[1], c.Dims[2], c.Dims[3]
		now := time.Now().UTC().Format(time.RFC1123)
		privFile := fmt.Sprintf(`%s<scidacFile><version>1.1</version><spacetime>4</spacetime><dims>%d %d %d %d </dims><volfmt>0</volfmt></scidacFile>`,
			xml.Header, lx, ly, lz, lt)
		privRecord := fmt.Sprintf(`%s<scidacRecord><version>1.1</version><date>%s</date><recordtype>0</recordtype><datatype>QDP_D3_ColorMatrix</datatype><precision>D</precision><colors>3</colors><spins>4</spins><typesize>144</typesize><datacount>4</datacount></scidacRecord>`,
			xml.Header, now)
		format, _ := xml.Marshal(ildgFormat{Xmlns: "http://www.lqcd.org/ildg", Version: "1.0", Field: "su3gauge", Precision: 64, LX: lx, LY: ly, LZ: lz, LT: lt})
		return writeLIMEMessages(w, [][]limeRecord{
			{{"scidac-private-file-xml", []byte(privFile)}, {"scidac-file-xml", []byte(xml.Header + "<info>written by pfmpi</info>")}},
			{
				{"scidac-private-record-xml", []byte(privRecord)},
				{"scidac-record-xml", []byte(xml.Header + "<info>gauge configuration</info>")},
				{"ildg-format", append([]byte(xml.Header), format...)},
				{"ildg-binary-data", data},
				sum.record(),
			},
			{infoRecord(c.Meta)},
		})
	}
	for s := 0; s < v; s++ {
		start := len(data)
		for _, z := range c.Links[s*nd*n : (s+1)*nd*n] {
			data = appendBE(data, z)
		}
		sum.add(uint64(s), data[start:])
	}
	format, _ := json.Marshal(pfmpiFormat{Dims: c.Dims, Nc: c.Nc, Order: limeOrder})
	return writeLIMEMessages(w, [][]limeRecord{
		{{"pfmpi-format", format}, {"pfmpi-binary-data", data}, sum.record()},
		{infoRecord(c.Meta)},
	})
}

func readLIME(r io.Reader) (*Config, error) {
	recs, err := readLIMERecords(r)
	if err != nil {
		return nil, err
	}
	find := func(typ string) []byte {
		for _, rec := range recs {
			if rec.typ == typ {
				return rec.data
			}
		}
		return nil
	}
	c := &Config{Meta: Meta{Plaquette: math.NaN(), Format: LIME, Checksum: "no scidac-checksum record"}}
	if b := find("pfmpi-info"); b != nil {
		var in pfmpiInfo
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, fmt.Errorf("corrupted pfmpi-info record: %w", err)
		}
		c.Meta.Beta, c.Meta.Info = in.Beta, in.Info
		if in.Plaquette != nil {
			c.Meta.Plaquette = *in.Plaquette
		}
	}
	var sum scidacChecksum
	switch {
	case find("ildg-format") != nil:
		var f ildgFormat
		if err := xml.Unmarshal(find("ildg-format"), &f); err != nil {
			return nil, fmt.Errorf("unreadable ildg-format record: %w", err)
		}
		if f.Field != "su3gauge" {
			return nil, fmt.Errorf("ILDG field %q; pfmpi reads su3gauge", f.Field)
		}
		if f.Precision != 32 && f.Precision != 64 {
			return nil, fmt.Errorf("ILDG precision %d; expected 32 or 64", f.Precision)
		}
		c.Dims, c.Nc = []int{f.LT, f.LX, f.LY, f.LZ}, 3
		if err := plausible(c.Dims, c.Nc); err != nil {
			return nil, fmt.Errorf("ILDG extents lx %d ly %d lz %d lt %d: %w", f.LX, f.LY, f.LZ, f.LT, err)
		}
		data := find("ildg-binary-data")
		if data == nil {
			return nil, errors.New("ILDG file without an ildg-binary-data record")
		}
		v := c.Volume()
		word := f.Precision / 8
		siteBytes := 4 * 18 * word
		if len(data) != v*siteBytes {
			return nil, fmt.Errorf("ildg-binary-data holds %d bytes; %d sites × %d bytes expected", len(data), v, siteBytes)
		}
		c.Links = make([]complex128, v*4*9)
		for r := 0; r < v; r++ {
			site := data[r*siteBytes : (r+1)*siteBytes]
			sum.add(uint64(r), site)
			s := ildgSite(r, c.Dims)
			for muILDG := 0; muILDG < 4; muILDG++ {
				mu := (muILDG + 1) % 4
				for k := 0; k < 9; k++ {
					off := (muILDG*18 + 2*k) * word
					c.Links[(s*4+mu)*9+k] = complex(readFloat(site[off:], word), readFloat(site[off+word:], word))
				}
			}
		}
	case find("pfmpi-format") != nil:
		var f pfmpiFormat
		if err := json.Unmarshal(find("pfmpi-format"), &f); err != nil {
			return nil, fmt.Errorf("unreadable pfmpi-format record: %w", err)
		}
		c.Dims, c.Nc = f.Dims, f.Nc
		if err := plausible(c.Dims, c.Nc); err != nil {
			return nil, fmt.Errorf("pfmpi-format %w", err)
		}
		data := find("pfmpi-binary-data")
		if data == nil {
			return nil, errors.New("LIME file without a pfmpi-binary-data record")
		}
		v, per := c.Volume(), len(c.Dims)*c.Nc*c.Nc
		if len(data) != v*per*16 {
			return nil, fmt.Errorf("pfmpi-binary-data holds %d bytes; %d expected", len(data), v*per*16)
		}
		c.Links = make([]complex128, v*per)
		for s := 0; s < v; s++ {
			site := data[s*per*16 : (s+1)*per*16]
			sum.add(uint64(s), site)
			for k := 0; k < per; k++ {
				c.Links[s*per+k] = complex(readFloat(site[16*k:], 8), readFloat(site[16*k+8:], 8))
			}
		}
	default:
		return nil, errors.New("LIME file without an ildg-format or pfmpi-format record: not a gauge configuration")
	}
	if b := find("scidac-checksum"); b != nil {
		status, err := sum.verify(b)
		if err != nil {
			return nil, err
		}
		c.Meta.Checksum = status
	}
	return c, nil
}

func readFloat(b []byte, word int) float64 {
	if word == 4 {
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b))
}
