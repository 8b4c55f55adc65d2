// Image decoding with PIL-compatible conversions and errors that name the file (see image.hpp).
// OpenCV decodes; this file adds what it lacks: format sniffing for messages, a header-only size and
// truncation check for JPEG/PNG (and size for BMP/WebP), PIL's 16-bit rules, WebP EXIF orientation.
#include "image.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>   // the IMREAD_* flags only: decoding goes through image_codecs.hpp
#include <opencv2/imgproc.hpp>

#include "errors.hpp"
#include "gif.hpp"
#include "image_codecs.hpp"

namespace vit {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

[[noreturn]] void fail(const std::string& name, const std::string& what) {
    throw InputError(name + ": " + what);
}

// OpenCV logs warnings and errors (OpenJPEG's "[ERROR:0@0.1] ... OpenJPEG2000: ...") for undecodable
// inputs; each of those reaches the caller as an InputError anyway, so its logging is turned off unless
// the user set OPENCV_LOG_LEVEL.
void quiet_opencv_logging() {
    static std::once_flag once;
    std::call_once(once, [] {
        using namespace cv::utils::logging;
        const char* env = std::getenv("OPENCV_LOG_LEVEL");
        if (!env || !*env) setLogLevel(LOG_LEVEL_SILENT);
    });
}

enum class Format { Unknown, Jpeg, Png, Bmp, Gif, WebP, Tiff, Jpeg2000, Pnm, Pfm, Exr, Hdr, SunRaster };

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

bool starts_with(const Bytes& d, const char* magic, size_t n, size_t at = 0) {
    return d.size() >= at + n && std::memcmp(d.data() + at, magic, n) == 0;
}

// The signatures OpenCV 4.6's decoders check, plus GIF (decoded here: OpenCV 4.6 has no GIF reader).
// They all lie in the first kSniffBytes bytes.
constexpr size_t kSniffBytes = 12;
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
    if (d.size() >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7' && std::isspace(d[2]))
        return Format::Pnm;
    if (d.size() >= 3 && d[0] == 'P' && (d[1] == 'f' || d[1] == 'F') && std::isspace(d[2]))
        return Format::Pfm;
    if (starts_with(d, "\x76\x2F\x31\x01", 4)) return Format::Exr;
    if (starts_with(d, "#?RADIANCE", 10) || starts_with(d, "#?RGBE", 6)) return Format::Hdr;
    if (starts_with(d, "\x59\xA6\x6A\x95", 4)) return Format::SunRaster;
    return Format::Unknown;
}

// No image this decoder accepts needs more than this many bytes per allowed pixel: 16-bit RGBA is 8, ASCII
// 16-bit PPM ("65535 " per sample) 18; the rest is room for metadata.
constexpr uint64_t kMaxBytesPerPixel = 32;
constexpr uint64_t kMaxMetadataBytes = 64u << 20;

// Reads a whole file, refusing before reading what cannot be an image within the pixel limit: a regular file
// over kMaxBytesPerPixel * max_pixels (+ metadata) bytes, and anything whose first bytes match no image
// signature (so `vit classify /dev/zero` or a 50 GB log file named .jpg fails after 64 KB, not after
// filling memory). Non-regular files (pipes, devices) are read up to the same limit.
Bytes read_file(const fs::path& path, size_t max_pixels, const std::string& name) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (st.type() == fs::file_type::not_found) fail(name, "no such file");
    if (ec) fail(name, ec == std::errc::permission_denied ? "permission denied" : ec.message());
    if (fs::is_directory(st)) fail(name, "is a directory, not an image file");

    const uint64_t max_bytes = max_pixels > (UINT64_MAX - kMaxMetadataBytes) / kMaxBytesPerPixel
                                   ? UINT64_MAX
                                   : kMaxBytesPerPixel * max_pixels + kMaxMetadataBytes;
    auto too_large = [&](uint64_t size) {
        fail(name, "file is " + std::to_string(size) + " bytes, more than an image of at most " +
                       std::to_string(max_pixels) + " pixels needs (" + std::to_string(max_bytes) + ")");
    };
    uintmax_t size = 0;
    if (fs::is_regular_file(st)) {
        size = fs::file_size(path, ec);
        if (ec) size = 0;
        if (size > max_bytes) too_large(size);
    }
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        const int err = errno;
        fail(name, err == EACCES ? "permission denied"
                                 : std::error_code(err, std::generic_category()).message());
    }
    Bytes data;
    data.reserve(static_cast<size_t>(size));
    unsigned char buf[1 << 16];
    size_t got;
    bool sniffed = false;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) {
        data.insert(data.end(), buf, buf + got);
        if (data.size() > max_bytes) {
            std::fclose(f);
            too_large(data.size());
        }
        if (!sniffed && data.size() >= kSniffBytes) {
            sniffed = true;
            const Format format = sniff(data);
            if (format == Format::Unknown) break;   // decode_image_bytes says why
        }
    }
    const bool error = std::ferror(f) != 0;
    const int err = errno;
    std::fclose(f);
    if (error) fail(name, "read error: " + std::error_code(err, std::generic_category()).message());
    return data;
}

uint32_t be16(const unsigned char* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t be32(const unsigned char* p) { return (be16(p) << 16) | be16(p + 2); }
uint32_t le16(const unsigned char* p) { return (uint32_t{p[1]} << 8) | p[0]; }
uint32_t le24(const unsigned char* p) { return (uint32_t{p[2]} << 16) | le16(p); }
uint32_t le32(const unsigned char* p) { return (uint32_t{p[3]} << 24) | le24(p); }

// What the header says, read without decoding.
struct HeaderInfo {
    std::optional<std::pair<uint64_t, uint64_t>> size;  // width, height
    bool truncated = false;                              // the data provably ends early
    std::string problem;                                 // a structural error found, if any
};

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
        if (m == 0xD9) return info;                                         // EOI: complete
        if (m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) continue;  // no payload
        if (pos + 2 > n) break;
        const size_t len = be16(&d[pos]);
        if (len < 2) return info;
        const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof && len >= 7 && pos + 7 <= n && !info.size)
            info.size = {{be16(&d[pos + 5]), be16(&d[pos + 3])}};
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
    if (d.size() >= 24 && std::memcmp(&d[12], "IHDR", 4) == 0)
        info.size = {{be32(&d[16]), be32(&d[20])}};
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
            const bool depth_ok = (color == 0 && (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)) ||
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
        info.size = {{static_cast<uint64_t>(std::abs(int64_t{w})),
                      static_cast<uint64_t>(std::abs(int64_t{h}))}};
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

// An unsigned decimal in a text header, saturated at 2^40 (more than any decoder accepts).
bool read_decimal(const Bytes& d, size_t& pos, uint64_t& v) {
    if (pos >= d.size() || !std::isdigit(d[pos])) return false;
    v = 0;
    while (pos < d.size() && std::isdigit(d[pos])) v = std::min<uint64_t>(v * 10 + (d[pos++] - '0'), 1ull << 40);
    return true;
}

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
    auto positive = [](const std::string& t, uint64_t& v) {
        if (t.empty() || t.size() > 12 || !std::all_of(t.begin(), t.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
            return false;
        v = std::stoull(t);
        return v > 0;
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
    if (!(std::fabs(std::strtod(tscale.c_str(), nullptr)) > 0)) {   // OpenCV asserts a non-zero scale
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
        if (kind != '4' && kind != '5' && kind != '6') return info;   // text data, or PFM
        uint64_t maxval = 1;
        if (kind != '4') {
            skip_space(d, pos);
            if (!read_decimal(d, pos, maxval) || maxval == 0 || maxval > 65535) {
                info.problem = "corrupt PNM header";
                return info;
            }
        }
        ++pos;   // the single whitespace byte before the data
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

// Radiance HDR (RGBE), read here rather than by OpenCV 4.6, whose reader leaks a FILE* (and so a file
// descriptor) for every malformed file and goes through a temporary file: a batch of bad .hdr files would
// end in "Too many open files". The result is what OpenCV returns, bit for bit: CV_32FC3 in BGR order,
// each component byte * 2^(exponent - 136), 0 where the exponent byte is 0.
struct RgbeLayout {
    uint64_t width = 0, height = 0;
    size_t data = 0;   // offset of the pixel data
};

// The text header: a "#?..." line, variable lines up to an empty line (one must be
// FORMAT=32-bit_rle_rgbe), then the resolution line "-Y H +X W" (the only orientation OpenCV reads).
HeaderInfo probe_hdr(const Bytes& d, RgbeLayout* layout = nullptr) {
    HeaderInfo info;
    auto line_at = [&](size_t pos, std::string& out) -> size_t {   // offset after the line, 0 at the end
        const auto nl = std::find(d.begin() + pos, d.end(), '\n');
        if (nl == d.end()) return 0;
        out.assign(d.begin() + pos, nl);
        return static_cast<size_t>(nl - d.begin()) + 1;
    };
    std::string line;
    size_t pos = line_at(0, line), next = 0;   // after the "#?RADIANCE" line
    bool format_ok = false;
    while (pos && (next = line_at(pos, line)) && !line.empty()) {
        format_ok = format_ok || line == "FORMAT=32-bit_rle_rgbe";
        pos = next;
    }
    if (!pos || !next) {
        info.truncated = true;
        return info;
    }
    pos = next;   // after the empty line
    if (!format_ok) {
        info.problem = "unsupported Radiance HDR data (no FORMAT=32-bit_rle_rgbe line)";
        return info;
    }
    const size_t data = line_at(pos, line);
    uint64_t h = 0, w = 0;
    size_t at = 2;
    auto number = [&](uint64_t& v) {
        while (at < line.size() && line[at] == ' ') ++at;
        if (at >= line.size() || !std::isdigit(static_cast<unsigned char>(line[at]))) return false;
        v = 0;
        while (at < line.size() && std::isdigit(static_cast<unsigned char>(line[at])))
            v = std::min<uint64_t>(v * 10 + (line[at++] - '0'), 1ull << 40);
        return true;
    };
    bool ok = data && line.rfind("-Y", 0) == 0 && number(h);
    while (ok && at < line.size() && line[at] == ' ') ++at;
    ok = ok && line.compare(at, 2, "+X") == 0 && (at += 2, number(w));
    if (!ok) {
        info.problem = "unsupported Radiance HDR data (resolution line is not \"-Y H +X W\")";
        return info;
    }
    info.size = {{w, h}};
    if (layout) *layout = {w, h, data};
    return info;
}

void rgbe_to_bgr(const unsigned char* rgbe, float* bgr) {
    if (rgbe[3] == 0) {
        bgr[0] = bgr[1] = bgr[2] = 0.0f;
        return;
    }
    const float scale = static_cast<float>(std::ldexp(1.0, rgbe[3] - 136));
    bgr[2] = rgbe[0] * scale;
    bgr[1] = rgbe[1] * scale;
    bgr[0] = rgbe[2] * scale;
}

// The pixels of a file probe_hdr accepted, within the pixel limits: flat RGBE quadruples, or scanlines
// run-length encoded per component (a scanline starting 2, 2, width >> 8, width & 255; only for widths
// 8..32767, and a scanline that does not start so switches to flat data for the rest of the image).
cv::Mat decode_hdr(const Bytes& d, const std::string& name) {
    RgbeLayout l;
    probe_hdr(d, &l);
    const int W = static_cast<int>(l.width), H = static_cast<int>(l.height);
    cv::Mat img(H, W, CV_32FC3);
    float* out = img.ptr<float>();
    const size_t total = static_cast<size_t>(W) * H;
    size_t pos = l.data, done = 0;
    auto truncated = [&]() { fail(name, "truncated Radiance HDR data"); };
    auto flat = [&]() {
        if ((d.size() - pos) / 4 < total - done) truncated();
        for (; done < total; ++done, pos += 4) rgbe_to_bgr(&d[pos], out + 3 * done);
    };
    if (W < 8 || W > 0x7fff) {
        flat();
        return img;
    }
    std::vector<unsigned char> line(4 * static_cast<size_t>(W));   // [4, W]: r, g, b, e planes
    for (int y = 0; y < H; ++y) {
        if (d.size() - pos < 4) truncated();
        if (d[pos] != 2 || d[pos + 1] != 2 || (d[pos + 2] & 0x80)) {
            flat();
            return img;
        }
        if (((d[pos + 2] << 8) | d[pos + 3]) != W) fail(name, "corrupt Radiance HDR data (wrong scanline width)");
        pos += 4;
        for (int c = 0; c < 4; ++c) {
            unsigned char* p = &line[static_cast<size_t>(c) * W];
            unsigned char* const end = p + W;
            while (p < end) {
                if (d.size() - pos < 2) truncated();
                const int code = d[pos];
                const bool run = code > 128;
                const int count = run ? code - 128 : code;
                if (count == 0 || count > end - p) fail(name, "corrupt Radiance HDR data (bad run length)");
                if (run) {
                    std::fill(p, p + count, d[pos + 1]);
                    pos += 2;
                } else {
                    if (d.size() - pos - 1 < static_cast<size_t>(count)) truncated();
                    std::copy(&d[pos + 1], &d[pos + 1] + count, p);
                    pos += 1 + count;
                }
                p += count;
            }
        }
        for (int x = 0; x < W; ++x, ++done) {
            const unsigned char q[4] = {line[x], line[W + x], line[2 * W + x], line[3 * W + x]};
            rgbe_to_bgr(q, out + 3 * done);
        }
    }
    return img;
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
        if (type == 3) v = u16(value_at);         // SHORT
        else if (type == 4) v = u32(value_at);    // LONG
        else if (type == 16 && big) v = u64(value_at);   // LONG8
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
    auto siz = [&](size_t at) {   // at: the FF4F of a codestream
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

// What every format's header says before OpenCV allocates the image: the pixel limit must hold here for
// all of them, or a 60-byte file claiming 30000x30000 costs 2.7 GB before its data is found missing.
HeaderInfo probe(Format f, const Bytes& d) {
    switch (f) {
        case Format::Jpeg: return probe_jpeg(d);
        case Format::Png: return probe_png(d);
        case Format::Bmp: return probe_bmp(d);
        case Format::WebP: return probe_webp(d);
        case Format::Pnm: case Format::Pfm: return probe_pnm(d);
        case Format::Hdr: return probe_hdr(d);
        case Format::Tiff: return probe_tiff(d);
        case Format::Jpeg2000: return probe_jpeg2000(d);
        case Format::Exr: return probe_exr(d);
        case Format::SunRaster: return probe_sun_raster(d);
        case Format::Gif: {
            const GifHeader g = probe_gif(d);
            HeaderInfo info;
            if (!g.truncated && g.problem.empty()) info.size = {{g.width, g.height}};
            info.truncated = g.truncated;
            info.problem = g.problem;
            return info;
        }
        default: return {};
    }
}

// EXIF orientation (tag 0x0112) of a WebP's "EXIF" chunk, 1 if absent. OpenCV 4.6 does not read it.
int webp_orientation(const Bytes& d) {
    size_t pos = 12;
    while (pos + 8 <= d.size()) {
        const size_t len = le32(&d[pos + 4]);
        if (len > d.size() - pos - 8) return 1;
        if (std::memcmp(&d[pos], "EXIF", 4) == 0) {
            const unsigned char* t = &d[pos + 8];
            size_t n = len;
            if (n >= 6 && std::memcmp(t, "Exif\0\0", 6) == 0) t += 6, n -= 6;
            if (n < 8) return 1;
            const bool le = t[0] == 'I';
            auto u16 = [&](size_t at) { return le ? le16(t + at) : be16(t + at); };
            auto u32 = [&](size_t at) { return le ? le32(t + at) : be32(t + at); };
            const size_t ifd = u32(4);
            if (ifd + 2 > n) return 1;
            const size_t entries = u16(ifd);
            for (size_t i = 0; i < entries && ifd + 2 + 12 * (i + 1) <= n; ++i) {
                const size_t e = ifd + 2 + 12 * i;
                if (u16(e) == 0x0112) {
                    const int o = static_cast<int>(u16(e + 8));
                    return o >= 1 && o <= 8 ? o : 1;
                }
            }
            return 1;
        }
        pos += 8 + len + (len & 1);
    }
    return 1;
}

// The same geometry as OpenCV's ApplyExifOrientation (and PIL's ImageOps.exif_transpose).
void apply_orientation(cv::Mat& img, int orientation) {
    switch (orientation) {
        case 2: cv::flip(img, img, 1); break;
        case 3: cv::flip(img, img, -1); break;
        case 4: cv::flip(img, img, 0); break;
        case 5: cv::transpose(img, img); break;
        case 6: cv::transpose(img, img); cv::flip(img, img, 1); break;
        case 7: cv::flip(img, img, -1); cv::transpose(img, img); break;
        case 8: cv::transpose(img, img); cv::flip(img, img, 0); break;
        default: break;
    }
}

// OpenCV 4.6's CV_IO_MAX_IMAGE_WIDTH and _HEIGHT.
constexpr uint64_t kOpenCvMaxSide = 1u << 20;

std::string pixel_limit_message(uint64_t w, uint64_t h, size_t max_pixels) {
    return "image is " + std::to_string(w) + "x" + std::to_string(h) + " = " +
           std::to_string(w * h) + " pixels, over the limit of " + std::to_string(max_pixels);
}

cv::Mat imdecode_checked(const Bytes& bytes, int flags, const std::string& name, Format format) {
    try {
        return vit::imdecode(bytes, flags);   // image_codecs.hpp: OpenCV loaded on first use
    } catch (const cv::Exception& e) {
        fail(name, std::string(format_name(format)) + " decoder failed: " + e.err);
    }
}

}  // namespace

cv::Mat decode_image_bytes(const Bytes& bytes, const std::string& name, std::size_t max_pixels) {
    quiet_opencv_logging();
    if (max_pixels == 0) max_pixels = kDefaultMaxPixels;
    if (bytes.empty()) fail(name, "empty file (0 bytes)");
    const Format format = sniff(bytes);
    // OpenCV has no decoder for a signature sniff() does not know: no need to let them all try.
    if (format == Format::Unknown) fail(name, "not an image (unrecognised or unsupported format)");

    const HeaderInfo header = probe(format, bytes);
    if (header.size) {
        // Sides clamped to 2^31 (no decoder takes more) so the product cannot wrap.
        const uint64_t w = std::min<uint64_t>(header.size->first, 1ull << 31);
        const uint64_t h = std::min<uint64_t>(header.size->second, 1ull << 31);
        if (w * h > max_pixels) fail(name, pixel_limit_message(w, h, max_pixels));
        // OpenCV refuses these itself, but only after copying the data of some formats (HDR, EXR) to a
        // temporary file that it then leaves behind.
        if (w == 0 || h == 0 || w > kOpenCvMaxSide || h > kOpenCvMaxSide)
            fail(name, "image is " + std::to_string(w) + "x" + std::to_string(h) +
                           ", outside OpenCV's limits (1 to " + std::to_string(kOpenCvMaxSide) + " pixels per side)");
    }
    if (!header.problem.empty()) fail(name, header.problem);
    if (header.truncated)
        fail(name, format == Format::Jpeg  ? "truncated JPEG data (no end-of-image marker)"
                   : format == Format::Png ? "truncated PNG data (ends inside a chunk or before IEND)"
                                           : std::string("truncated ") + format_name(format) + " data");

    // ANYDEPTH|ANYCOLOR keeps 16-bit data and the gray/colour distinction so PIL's rules can be
    // applied below; OpenCV still applies EXIF orientation with these flags (not with UNCHANGED).
    int flags = cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR;
    if (format == Format::WebP) flags |= cv::IMREAD_IGNORE_ORIENTATION;  // applied here instead
    cv::Mat img;
    if (format == Format::Hdr) {
        img = decode_hdr(bytes, name);
    } else if (format == Format::Gif) {
        try {
            img = decode_gif_first_frame(bytes);   // OpenCV 4.6 has no GIF decoder
        } catch (const std::runtime_error& e) {
            fail(name, e.what());
        }
    } else {
        img = imdecode_checked(bytes, flags, name, format);
    }
    if (img.empty()) {
        if (format == Format::Unknown) fail(name, "not an image (unrecognised or unsupported format)");
        fail(name, std::string("corrupt or unsupported ") + format_name(format) + " data");
    }
    if (static_cast<uint64_t>(img.cols) * img.rows > max_pixels)
        fail(name, pixel_limit_message(img.cols, img.rows, max_pixels));

    if (img.depth() == CV_32F || img.depth() == CV_64F) {
        // Float data (EXR, HDR, PFM, float TIFF; PIL reads none of them): [0, 1] -> [0, 255], clipped.
        img.convertTo(img, CV_8U, 255.0);
    } else if (img.depth() != CV_8U && img.depth() != CV_16U) {
        img.convertTo(img, CV_8U);  // signed or 32-bit integers: clipped to [0, 255] like PIL's mode "I"
    }
    if (img.depth() == CV_16U) {
        // Gray: PIL opens it as mode "I" and converts with clipping, min(v, 255).
        // Colour: PIL unpacks 16-bit RGB(A) by keeping the high byte, v >> 8.
        const bool gray = img.channels() == 1;
        cv::Mat img8(img.rows, img.cols, CV_8UC(img.channels()));
        for (int y = 0; y < img.rows; ++y) {
            const uint16_t* in = img.ptr<uint16_t>(y);
            uint8_t* out = img8.ptr<uint8_t>(y);
            const int n = img.cols * img.channels();
            for (int i = 0; i < n; ++i)
                out[i] = static_cast<uint8_t>(gray ? (in[i] > 255 ? 255 : in[i]) : in[i] >> 8);
        }
        img = img8;
    }

    cv::Mat rgb;
    switch (img.channels()) {
        case 1: cv::cvtColor(img, rgb, cv::COLOR_GRAY2RGB); break;
        case 3: cv::cvtColor(img, rgb, cv::COLOR_BGR2RGB); break;
        case 4: cv::cvtColor(img, rgb, cv::COLOR_BGRA2RGB); break;
        default:
            fail(name, "unsupported channel count " + std::to_string(img.channels()));
    }
    if (format == Format::WebP) apply_orientation(rgb, webp_orientation(bytes));
    return rgb;
}

cv::Mat decode_image_file(const std::filesystem::path& path, std::size_t max_pixels) {
    if (max_pixels == 0) max_pixels = kDefaultMaxPixels;
    return decode_image_bytes(read_file(path, max_pixels, path.string()), path.string(), max_pixels);
}

cv::Mat decode_image_stdin(std::size_t max_pixels) {
    if (max_pixels == 0) max_pixels = kDefaultMaxPixels;
    return decode_image_bytes(read_file("/dev/stdin", max_pixels, "-"), "-", max_pixels);
}

cv::Mat to_gray(const cv::Mat& rgb) {
    if (rgb.type() == CV_8UC1) return rgb.clone();
    if (rgb.type() != CV_8UC3)
        throw std::invalid_argument("to_gray: expected a CV_8UC3 RGB image, got " +
                                    cv::typeToString(rgb.type()));
    cv::Mat gray(rgb.rows, rgb.cols, CV_8UC1);
    for (int y = 0; y < rgb.rows; ++y) {
        const uint8_t* in = rgb.ptr<uint8_t>(y);
        uint8_t* out = gray.ptr<uint8_t>(y);
        for (int x = 0; x < rgb.cols; ++x, in += 3)
            out[x] = static_cast<uint8_t>((in[0] * 19595 + in[1] * 38470 + in[2] * 7471 + 0x8000) >> 16);
    }
    return gray;
}

}  // namespace vit
