// Format sniffing and the header probes (see image_format.hpp): for each format OpenCV decodes here (JPEG, PNG,
// BMP, WebP, TIFF, JPEG 2000, PNM/PAM, PFM, OpenEXR, Sun raster) and the two vit decodes itself (GIF in gif.cpp,
// Radiance HDR in hdr.cpp), the image size from the header, and whether the data is provably truncated or
// structurally broken, found before any decoder allocates or writes a temporary file.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "byte_reader.hpp"
#include "gif.hpp"
#include "hdr.hpp"
#include "image_format.hpp"

namespace vit::image {

using bytes::be16;
using bytes::be32;
using bytes::le16;
using bytes::le24;
using bytes::le32;

namespace {

bool starts_with(const Bytes& d, const char* magic, size_t n, size_t at = 0) {
    return d.size() >= at + n && std::memcmp(d.data() + at, magic, n) == 0;
}

// Walks the JPEG marker segments and entropy-coded scans up to EOI. Without EOI the data is
// truncated: PIL then raises "image file is truncated" while libjpeg (OpenCV) fills the rest grey.
// Garbage between markers is skipped as libjpeg does; a bad segment length stops the walk undecided.
HeaderInfo probe_jpeg(const Bytes& d) {
    HeaderInfo info;
    const size_t n = d.size();
    size_t pos = 2;  // after SOI
    for (;;) {
        while (pos < n && d[pos] != 0xFF) ++pos;
        while (pos < n && d[pos] == 0xFF) ++pos;
        if (pos >= n) break;
        const unsigned char m = d[pos++];
        if (m == 0xD9) return info;                                        // EOI: complete
        if (m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) continue;  // no payload
        if (pos + 2 > n) break;
        const size_t len = be16(&d[pos]);
        if (len < 2) return info;
        const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof && len >= 7 && pos + 7 <= n && !info.size) info.size = {{be16(&d[pos + 5]), be16(&d[pos + 3])}};
        pos += len;
        if (m != 0xDA) continue;
        // Scan data runs to the next marker that is not a stuffed 0xFF00 or a restart marker.
        for (;;) {
            if (pos >= n) break;
            const void* ff = std::memchr(&d[pos], 0xFF, n - pos);
            if (!ff) {
                pos = n;
                break;
            }
            size_t q = static_cast<const unsigned char*>(ff) - d.data() + 1;
            while (q < n && d[q] == 0xFF) ++q;
            if (q >= n) {
                pos = n;
                break;
            }
            if (d[q] == 0x00 || (d[q] >= 0xD0 && d[q] <= 0xD7)) {
                pos = q + 1;
                continue;
            }
            pos = q - 1;  // at the 0xFF before the marker code
            break;
        }
    }
    info.truncated = true;
    return info;
}

// CRC-32 of PNG chunks (ISO 3309, the zlib polynomial), table-driven.
uint32_t crc32(const unsigned char* p, size_t n) {
    static const auto table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

// Size from IHDR; every chunk must be whole up to IEND (libpng, and so OpenCV, fails otherwise).
// The structure libpng would reject with a "libpng error: ..." line on stderr (OpenCV gives it no error
// handler of its own) is refused here first, with the reason: a bad chunk CRC (any flipped bit; PIL refuses
// these too), an invalid chunk type, a bad IHDR, or a size over libpng's 1,000,000 limit per side.
HeaderInfo probe_png(const Bytes& d) {
    HeaderInfo info;
    if (d.size() >= 24 && std::memcmp(&d[12], "IHDR", 4) == 0) info.size = {{be32(&d[16]), be32(&d[20])}};
    size_t pos = 8;
    bool first = true;
    while (pos + 8 <= d.size()) {
        const uint64_t len = be32(&d[pos]);
        const unsigned char* type = &d[pos + 4];
        const std::string name(reinterpret_cast<const char*>(type), 4);
        if (len > 0x7FFFFFFFu) {
            info.problem = "invalid PNG chunk length";
            return info;
        }
        for (int i = 0; i < 4; ++i)
            if (!std::isalpha(type[i])) {
                info.problem = "invalid PNG chunk type";
                return info;
            }
        if (first && name != "IHDR") {
            info.problem = "PNG data does not start with an IHDR chunk";
            return info;
        }
        if (pos + 12 + len > d.size()) break;
        if (crc32(type, 4 + len) != be32(&d[pos + 8 + len])) {
            info.problem = "corrupt PNG data (CRC mismatch in chunk " + name + ")";
            return info;
        }
        if (first) {
            const unsigned char* h = &d[pos + 8];
            const uint32_t w = len == 13 ? be32(h) : 0, ht = len == 13 ? be32(h + 4) : 0;
            const int depth = len == 13 ? h[8] : 0, color = len == 13 ? h[9] : 0;
            const bool depth_ok = (color == 0 &&
                                   (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)) ||
                                  (color == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
                                  ((color == 2 || color == 4 || color == 6) && (depth == 8 || depth == 16));
            if (len != 13 || w == 0 || ht == 0 || w > 0x7FFFFFFFu || ht > 0x7FFFFFFFu || !depth_ok || h[10] != 0 ||
                h[11] != 0 || h[12] > 1) {
                info.problem = "invalid PNG header (IHDR)";
                return info;
            }
            if (w > 1000000 || ht > 1000000) {
                info.problem = "PNG image is " + std::to_string(w) + "x" + std::to_string(ht) +
                               ", over libpng's limit of 1000000 pixels per side";
                return info;
            }
            first = false;
        }
        if (name == "IEND") return info;
        pos += 12 + len;
    }
    info.truncated = true;
    return info;
}

HeaderInfo probe_bmp(const Bytes& d) {
    HeaderInfo info;
    if (d.size() < 26) return info;
    const uint32_t header = le32(&d[14]);
    if (header == 12) {  // BITMAPCOREHEADER: 16-bit sizes
        info.size = {{le16(&d[18]), le16(&d[20])}};
    } else if (header >= 40) {
        const int32_t w = static_cast<int32_t>(le32(&d[18]));
        const int32_t h = static_cast<int32_t>(le32(&d[22]));  // negative: top-down
        info.size = {{static_cast<uint64_t>(std::abs(int64_t{w})), static_cast<uint64_t>(std::abs(int64_t{h}))}};
    }
    return info;
}

HeaderInfo probe_webp(const Bytes& d) {
    HeaderInfo info;
    if (d.size() < 30) return info;
    const unsigned char* c = &d[12];  // first chunk
    if (std::memcmp(c, "VP8X", 4) == 0) {
        info.size = {{uint64_t{le24(c + 12)} + 1, uint64_t{le24(c + 15)} + 1}};
    } else if (std::memcmp(c, "VP8L", 4) == 0 && c[8] == 0x2F) {
        const uint32_t bits = le32(c + 9);
        info.size = {{(bits & 0x3FFF) + 1u, ((bits >> 14) & 0x3FFF) + 1u}};
    } else if (std::memcmp(c, "VP8 ", 4) == 0 && c[11] == 0x9D && c[12] == 0x01 && c[13] == 0x2A) {
        info.size = {{le16(c + 14) & 0x3FFF, le16(c + 16) & 0x3FFF}};
    }
    return info;
}

// Skips whitespace and '#' comments (to the end of the line) in a text header, as OpenCV's PxM reader does.
void skip_space(const Bytes& d, size_t& pos) {
    while (pos < d.size()) {
        if (d[pos] == '#') {
            while (pos < d.size() && d[pos] != '\n' && d[pos] != '\r') ++pos;
        } else if (std::isspace(d[pos])) {
            ++pos;
        } else {
            break;
        }
    }
}

bool read_decimal(const Bytes& d, size_t& pos, uint64_t& v) { return bytes::read_decimal(d.data(), d.size(), pos, v); }

// PFM as OpenCV 4.6 reads it: "P[fF]\n", then width, height and scale, each the characters up to the next
// single whitespace byte (so "4  3" has height 0), then W * H * channels little/big-endian floats. Anything
// OpenCV would refuse after copying the data to a temporary file, which it then leaves behind when the size
// is invalid, is refused here instead.
HeaderInfo probe_pfm(const Bytes& d) {
    HeaderInfo info;
    size_t pos = 3;
    auto token = [&](std::string& t) {
        t.clear();
        while (pos < d.size() && !std::isspace(d[pos]) && t.size() < 64) t += static_cast<char>(d[pos++]);
        if (pos >= d.size() || !std::isspace(d[pos])) return false;
        ++pos;
        return true;
    };
    std::string tw, th, tscale;
    auto positive = [](const std::string& t, uint64_t& v) {  // 1 to 12 digits, not all zero
        size_t at = 0;
        return t.size() <= 12 &&
               bytes::read_decimal(reinterpret_cast<const unsigned char*>(t.data()), t.size(), at, v) &&
               at == t.size() && v > 0;
    };
    uint64_t w = 0, h = 0;
    if (d[2] != '\n' || !token(tw) || !token(th) || !positive(tw, w) || !positive(th, h)) {
        info.problem = "corrupt PFM header";
        return info;
    }
    info.size = {{w, h}};
    if (!token(tscale)) {
        info.truncated = true;
        return info;
    }
    if (!(std::fabs(std::strtod(tscale.c_str(), nullptr)) > 0)) {  // OpenCV asserts a non-zero scale
        info.problem = "corrupt PFM header (zero or invalid scale)";
        return info;
    }
    const uint64_t row = w * (d[1] == 'F' ? 3 : 1) * 4;
    if (w <= (1ull << 31) && h <= (1ull << 31) && h > (d.size() - pos) / row) info.truncated = true;
    return info;
}

// PBM/PGM/PPM ("P1".."P6 W H [MAXVAL]"), PFM ("Pf"/"PF W H ...") and PAM ("P7", lines "WIDTH W", "HEIGHT H").
// A header that does not parse, or binary data shorter than the header says, is refused here: OpenCV's
// readers would print "imdecode_(''): can't read ..." on stderr for them.
HeaderInfo probe_pnm(const Bytes& d) {
    HeaderInfo info;
    size_t pos = 2;
    uint64_t w = 0, h = 0;
    const char kind = static_cast<char>(d[1]);
    const std::string format = d[0] == 'P' && (kind == 'f' || kind == 'F') ? "PFM" : kind == '7' ? "PAM" : "PNM";
    if (format == "PFM") return probe_pfm(d);
    if (kind != '7') {
        skip_space(d, pos);
        bool ok = read_decimal(d, pos, w);
        skip_space(d, pos);
        ok = ok && read_decimal(d, pos, h);
        if (!ok) {
            info.problem = "corrupt " + format + " header";
            return info;
        }
        info.size = {{w, h}};
        if (kind != '4' && kind != '5' && kind != '6') return info;  // text data, or PFM
        uint64_t maxval = 1;
        if (kind != '4') {
            skip_space(d, pos);
            if (!read_decimal(d, pos, maxval) || maxval == 0 || maxval > 65535) {
                info.problem = "corrupt PNM header";
                return info;
            }
        }
        ++pos;  // the single whitespace byte before the data
        const uint64_t sample = maxval > 255 ? 2 : 1, channels = kind == '6' ? 3 : 1;
        const uint64_t row = kind == '4' ? (w + 7) / 8 : w * channels * sample;
        if (w <= (1ull << 31) && h <= (1ull << 31) && (pos > d.size() || (row && h > (d.size() - pos) / row)))
            info.truncated = true;
        return info;
    }
    bool have_w = false, have_h = false;
    while (pos < d.size() && !(have_w && have_h)) {
        skip_space(d, pos);
        size_t end = pos;
        while (end < d.size() && !std::isspace(d[end])) ++end;
        const std::string token(d.begin() + pos, d.begin() + end);
        pos = end;
        if (token == "ENDHDR" || token.empty()) break;
        if (token == "WIDTH" || token == "HEIGHT") {
            skip_space(d, pos);
            uint64_t v = 0;
            if (!read_decimal(d, pos, v)) break;
            (token == "WIDTH" ? w : h) = v;
            (token == "WIDTH" ? have_w : have_h) = true;
        }
    }
    if (have_w && have_h) info.size = {{w, h}};
    else info.problem = "corrupt PAM header";
    return info;
}

// TIFF and BigTIFF: ImageWidth (256) and ImageLength (257) of the first IFD, the one OpenCV decodes.
HeaderInfo probe_tiff(const Bytes& d) {
    HeaderInfo info;
    const bool le = d[0] == 'I', big = d[2] == '+' || d[3] == '+';
    auto u16 = [&](size_t at) -> uint64_t { return le ? le16(&d[at]) : be16(&d[at]); };
    auto u32 = [&](size_t at) -> uint64_t { return le ? le32(&d[at]) : be32(&d[at]); };
    auto u64 = [&](size_t at) -> uint64_t {
        return le ? (u32(at + 4) << 32) | u32(at) : (u32(at) << 32) | u32(at + 4);
    };
    const size_t entry_size = big ? 20 : 12, count_size = big ? 8 : 2;
    if (d.size() < (big ? 16u : 8u)) return info;
    const uint64_t ifd = big ? u64(8) : u32(4);
    if (ifd > d.size() || d.size() - ifd < count_size) return info;
    const uint64_t entries = big ? u64(ifd) : u16(ifd);
    std::optional<uint64_t> w, h;
    for (uint64_t i = 0; i < entries; ++i) {
        const uint64_t e = ifd + count_size + i * entry_size;
        if (e > d.size() || d.size() - e < entry_size) break;
        const uint64_t tag = u16(e), type = u16(e + 2), value_at = e + (big ? 12 : 8);
        if (tag != 256 && tag != 257) continue;
        uint64_t v;
        if (type == 3) v = u16(value_at);               // SHORT
        else if (type == 4) v = u32(value_at);          // LONG
        else if (type == 16 && big) v = u64(value_at);  // LONG8
        else continue;
        (tag == 256 ? w : h) = v;
    }
    if (w && h) info.size = {{*w, *h}};
    return info;
}

// JPEG 2000: the SIZ marker of the codestream (raw, or in the JP2 "jp2c" box) and the JP2 "ihdr" box;
// the larger when both are present (openjpeg decodes SIZ's size).
HeaderInfo probe_jpeg2000(const Bytes& d) {
    HeaderInfo info;
    auto siz = [&](size_t at) {  // at: the FF4F of a codestream
        if (at > d.size() || d.size() - at < 24 || d[at + 2] != 0xFF || d[at + 3] != 0x51) return;
        const uint64_t x1 = be32(&d[at + 8]), y1 = be32(&d[at + 12]);
        const uint64_t x0 = be32(&d[at + 16]), y0 = be32(&d[at + 20]);
        if (x0 <= x1 && y0 <= y1) info.size = {{x1 - x0, y1 - y0}};
    };
    if (d[0] == 0xFF) {
        siz(0);
        return info;
    }
    std::optional<std::pair<uint64_t, uint64_t>> ihdr;
    // Boxes: u32 length (1: a u64 length follows; 0: to the end), 4-byte type.
    auto walk = [&](size_t pos, size_t end, auto& self) -> void {
        while (pos + 8 <= end) {
            uint64_t len = be32(&d[pos]);
            size_t header = 8;
            if (len == 1) {
                if (pos + 16 > end) return;
                len = (uint64_t{be32(&d[pos + 8])} << 32) | be32(&d[pos + 12]);
                header = 16;
            } else if (len == 0) {
                len = end - pos;
            }
            if (len < header || len > end - pos) return;
            const char* type = reinterpret_cast<const char*>(&d[pos + 4]);
            if (std::memcmp(type, "jp2h", 4) == 0) self(pos + header, pos + len, self);
            else if (std::memcmp(type, "ihdr", 4) == 0 && len >= header + 8)
                ihdr = {{be32(&d[pos + header + 4]), be32(&d[pos + header])}};
            else if (std::memcmp(type, "jp2c", 4) == 0) siz(pos + header);
            pos += len;
        }
    };
    walk(0, d.size(), walk);
    if (ihdr && (!info.size || ihdr->first * ihdr->second > info.size->first * info.size->second)) info.size = ihdr;
    return info;
}

// OpenEXR: the first header's "dataWindow" (box2i: xMin, yMin, xMax, yMax) among its attributes
// (name\0 type\0 u32 size, value), which end at an empty name.
HeaderInfo probe_exr(const Bytes& d) {
    HeaderInfo info;
    size_t pos = 8;
    auto cstr = [&](std::string& out) {
        const auto* begin = &d[pos];
        const void* nul = std::memchr(begin, 0, std::min<size_t>(d.size() - pos, 256));
        if (!nul) return false;
        out.assign(reinterpret_cast<const char*>(begin), static_cast<const unsigned char*>(nul) - begin);
        pos += out.size() + 1;
        return true;
    };
    while (pos < d.size()) {
        std::string name, type;
        if (!cstr(name) || name.empty() || pos >= d.size() || !cstr(type) || d.size() - pos < 4) break;
        const uint64_t size = le32(&d[pos]);
        pos += 4;
        if (size > d.size() - pos) break;
        if (name == "dataWindow" && type == "box2i" && size == 16) {
            const auto s32 = [&](size_t at) { return int64_t{static_cast<int32_t>(le32(&d[at]))}; };
            const int64_t x0 = s32(pos), y0 = s32(pos + 4), x1 = s32(pos + 8), y1 = s32(pos + 12);
            if (x1 >= x0 && y1 >= y0) info.size = {{uint64_t(x1 - x0 + 1), uint64_t(y1 - y0 + 1)}};
            else info.problem = "corrupt OpenEXR header (empty data window)";
            return info;
        }
        pos += size;
    }
    // OpenCV would copy the data to a temporary file and, for some of these, leave it behind.
    info.problem = "corrupt OpenEXR header (no dataWindow)";
    return info;
}

HeaderInfo probe_sun_raster(const Bytes& d) {
    HeaderInfo info;
    if (d.size() >= 12) info.size = {{be32(&d[4]), be32(&d[8])}};
    return info;
}

// The header of a format vit decodes itself (GIF, HDR), as the other probes say it.
HeaderInfo decoder_header(bool has_size, uint64_t w, uint64_t h, bool truncated, const std::string& problem) {
    HeaderInfo info;
    if (has_size) info.size = {{w, h}};
    info.truncated = truncated;
    info.problem = problem;
    return info;
}

}  // namespace

const char* format_name(Format f) {
    switch (f) {
        case Format::Jpeg: return "JPEG";
        case Format::Png: return "PNG";
        case Format::Bmp: return "BMP";
        case Format::Gif: return "GIF";
        case Format::WebP: return "WebP";
        case Format::Tiff: return "TIFF";
        case Format::Jpeg2000: return "JPEG 2000";
        case Format::Pnm: return "PNM";
        case Format::Pfm: return "PFM";
        case Format::Exr: return "OpenEXR";
        case Format::Hdr: return "Radiance HDR";
        case Format::SunRaster: return "Sun raster";
        case Format::Unknown: break;
    }
    return "unknown";
}

Format sniff(const Bytes& d) {
    if (starts_with(d, "\xFF\xD8\xFF", 3)) return Format::Jpeg;
    if (starts_with(d, "\x89PNG\r\n\x1A\n", 8)) return Format::Png;
    if (starts_with(d, "BM", 2)) return Format::Bmp;
    if (starts_with(d, "GIF87a", 6) || starts_with(d, "GIF89a", 6)) return Format::Gif;
    if (starts_with(d, "RIFF", 4) && starts_with(d, "WEBP", 4, 8)) return Format::WebP;
    if (starts_with(d, "II*\0", 4) || starts_with(d, "MM\0*", 4) || starts_with(d, "II+\0", 4) ||
        starts_with(d, "MM\0+", 4))
        return Format::Tiff;
    if (starts_with(d, "\xFF\x4F\xFF\x51", 4) || starts_with(d, "\0\0\0\x0CjP  \r\n\x87\n", 12))
        return Format::Jpeg2000;
    if (d.size() >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7' && std::isspace(d[2])) return Format::Pnm;
    if (d.size() >= 3 && d[0] == 'P' && (d[1] == 'f' || d[1] == 'F') && std::isspace(d[2])) return Format::Pfm;
    if (starts_with(d, "\x76\x2F\x31\x01", 4)) return Format::Exr;
    if (starts_with(d, "#?RADIANCE", 10) || starts_with(d, "#?RGBE", 6)) return Format::Hdr;
    if (starts_with(d, "\x59\xA6\x6A\x95", 4)) return Format::SunRaster;
    return Format::Unknown;
}

// What every format's header says before OpenCV allocates the image: the pixel limit must hold here for
// all of them, or a 60-byte file claiming 30000x30000 costs 2.7 GB before its data is found missing.
HeaderInfo probe(Format f, const Bytes& d) {
    switch (f) {
        case Format::Jpeg: return probe_jpeg(d);
        case Format::Png: return probe_png(d);
        case Format::Bmp: return probe_bmp(d);
        case Format::WebP: return probe_webp(d);
        case Format::Pnm:
        case Format::Pfm: return probe_pnm(d);
        case Format::Hdr: {
            const HdrHeader h = probe_hdr(d);
            return decoder_header(h.has_size, h.width, h.height, h.truncated, h.problem);
        }
        case Format::Tiff: return probe_tiff(d);
        case Format::Jpeg2000: return probe_jpeg2000(d);
        case Format::Exr: return probe_exr(d);
        case Format::SunRaster: return probe_sun_raster(d);
        case Format::Gif: {
            const GifHeader g = probe_gif(d);
            return decoder_header(!g.truncated && g.problem.empty(), g.width, g.height, g.truncated, g.problem);
        }
        case Format::Unknown: break;
    }
    return {};
}

}  // namespace vit::image
