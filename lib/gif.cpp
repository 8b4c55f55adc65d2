// GIF first-frame decoder (see gif.hpp): block walk, LZW, interlace, PIL 9.4's canvas and palette rules.
// GIF layout: "GIF87a"/"GIF89a", logical screen descriptor (width, height, flags, background, aspect),
// optional global colour table, then blocks: 0x21 extension (label + sub-blocks), 0x2C image (descriptor,
// optional local colour table, LZW minimum code size, sub-blocks), 0x3B trailer. Sub-blocks are a length
// byte and that many bytes, ended by a zero length.
#include "gif.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>

#include "byte_reader.hpp"

namespace vit {
namespace {

using Bytes = std::vector<unsigned char>;

using bytes::le16;

struct Frame {
    std::size_t x = 0, y = 0, width = 0, height = 0;
    bool interlaced = false;
    std::optional<int> transparent;          // from the graphic control extension before the frame
    const unsigned char* palette = nullptr;  // local or global colour table (RGB triples), or none
    std::size_t palette_entries = 0;
    std::size_t data = 0;  // offset of the LZW minimum code size byte
};

struct Parsed {
    GifHeader header;
    std::optional<Frame> frame;
};

// Skips a chain of sub-blocks starting at `pos`; false when the data ends inside it.
bool skip_sub_blocks(const Bytes& d, std::size_t& pos) {
    for (;;) {
        if (pos >= d.size()) return false;
        const std::size_t n = d[pos++];
        if (n == 0) return true;
        if (n > d.size() - pos) return false;
        pos += n;
    }
}

// Walks the blocks up to the first image descriptor.
Parsed parse(const Bytes& d) {
    Parsed p;
    GifHeader& h = p.header;
    if (d.size() < 13) {
        h.truncated = true;
        return p;
    }
    h.width = le16(&d[6]);
    h.height = le16(&d[8]);
    const unsigned flags = d[10];
    std::size_t pos = 13;
    const unsigned char* global = nullptr;
    std::size_t global_entries = 0;
    if (flags & 0x80) {
        global_entries = std::size_t{1} << ((flags & 7) + 1);
        if (d.size() - pos < 3 * global_entries) {
            h.truncated = true;
            return p;
        }
        global = &d[pos];
        pos += 3 * global_entries;
    }
    std::optional<int> transparent;
    for (;;) {
        if (pos >= d.size()) {
            h.truncated = true;
            return p;
        }
        const unsigned char block = d[pos++];
        if (block == 0x3B) {
            h.problem = "GIF data has no image (trailer before the first frame)";
            return p;
        }
        if (block == 0x21) {
            if (pos >= d.size()) {
                h.truncated = true;
                return p;
            }
            const unsigned char label = d[pos++];
            // Graphic control extension: sub-block of 4 bytes (flags, delay, transparent index).
            if (label == 0xF9 && pos + 5 <= d.size() && d[pos] == 4) {
                transparent.reset();
                if (d[pos + 1] & 1) transparent = d[pos + 4];
            }
            if (!skip_sub_blocks(d, pos)) {
                h.truncated = true;
                return p;
            }
            continue;
        }
        if (block != 0x2C) {
            h.problem = "corrupt GIF data (unknown block type 0x" + std::string(1, "0123456789abcdef"[block >> 4]) +
                        std::string(1, "0123456789abcdef"[block & 15]) + " before the first frame)";
            return p;
        }
        if (d.size() - pos < 9) {
            h.truncated = true;
            return p;
        }
        Frame f;
        f.x = le16(&d[pos]);
        f.y = le16(&d[pos + 2]);
        f.width = le16(&d[pos + 4]);
        f.height = le16(&d[pos + 6]);
        const unsigned fflags = d[pos + 8];
        pos += 9;
        f.interlaced = fflags & 0x40;
        f.transparent = transparent;
        f.palette = global;
        f.palette_entries = global_entries;
        if (fflags & 0x80) {
            f.palette_entries = std::size_t{1} << ((fflags & 7) + 1);
            if (d.size() - pos < 3 * f.palette_entries) {
                h.truncated = true;
                return p;
            }
            f.palette = &d[pos];
            pos += 3 * f.palette_entries;
        }
        f.data = pos;
        // PIL grows the canvas to hold a frame that reaches past the logical screen.
        h.width = std::max<std::uint64_t>(h.width, f.x + f.width);
        h.height = std::max<std::uint64_t>(h.height, f.y + f.height);
        p.frame = f;
        return p;
    }
}

// Row of the frame that the k-th decoded row fills: interlaced GIFs store rows 0, 8, 16, ... then 4, 12, ...,
// then 2, 6, ..., then 1, 3, ...
std::vector<std::size_t> row_order(std::size_t height, bool interlaced) {
    std::vector<std::size_t> rows;
    rows.reserve(height);
    if (!interlaced) {
        for (std::size_t r = 0; r < height; ++r) rows.push_back(r);
        return rows;
    }
    const std::size_t start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    for (int pass = 0; pass < 4; ++pass)
        for (std::size_t r = start[pass]; r < height; r += step[pass]) rows.push_back(r);
    return rows;
}

// Decodes the frame's LZW stream into width*height palette indices (row order as stored).
std::vector<unsigned char> decode_lzw(const Bytes& d, const Frame& f) {
    std::size_t pos = f.data;
    if (pos >= d.size()) throw std::runtime_error("truncated GIF data (ends before the first frame's pixels)");
    const int min_code_size = d[pos++];
    if (min_code_size < 1 || min_code_size > 11)
        throw std::runtime_error("corrupt GIF data (LZW minimum code size " + std::to_string(min_code_size) +
                                 ", expected 1 to 11)");
    // The sub-blocks joined: the code stream.
    Bytes codes;
    for (;;) {
        if (pos >= d.size()) throw std::runtime_error("truncated GIF data (ends inside the first frame's pixels)");
        const std::size_t n = d[pos++];
        if (n == 0) break;
        if (n > d.size() - pos) throw std::runtime_error("truncated GIF data (ends inside the first frame's pixels)");
        codes.insert(codes.end(), d.begin() + static_cast<std::ptrdiff_t>(pos),
                     d.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
    }

    const std::size_t total = f.width * f.height;
    std::vector<unsigned char> out(total);
    std::size_t filled = 0;
    const int clear = 1 << min_code_size, end = clear + 1;
    std::array<std::uint16_t, 4096> prefix{};
    std::array<unsigned char, 4096> suffix{}, first{};
    std::array<std::uint16_t, 4096> length{};
    for (int c = 0; c < clear; ++c) suffix[c] = first[c] = static_cast<unsigned char>(c), length[c] = 1;
    int size = min_code_size + 1, next = end + 1, prev = -1;
    std::size_t bit = 0;
    const std::size_t bits = codes.size() * 8;

    // Writes the string of `code` at out[filled...], clipped to the frame.
    auto emit = [&](int code) {
        const std::size_t n = length[code];
        std::size_t at = filled + n;
        for (int c = code; at > filled; c = prefix[c]) {
            --at;
            if (at < total) out[at] = suffix[c];
        }
        filled += n;
    };
    while (filled < total) {
        if (bit + size > bits)
            throw std::runtime_error("corrupt GIF data (the first frame's pixel data ends after " +
                                     std::to_string(filled) + " of " + std::to_string(total) + " pixels)");
        int code = 0;
        for (int i = 0; i < size; ++i, ++bit) code |= ((codes[bit >> 3] >> (bit & 7)) & 1) << i;
        if (code == clear) {
            size = min_code_size + 1;
            next = end + 1;
            prev = -1;
            continue;
        }
        if (code == end) {
            if (filled < total)
                throw std::runtime_error("corrupt GIF data (the first frame's pixel data ends after " +
                                         std::to_string(filled) + " of " + std::to_string(total) + " pixels)");
            break;
        }
        if (prev < 0) {
            if (code > clear) throw std::runtime_error("corrupt GIF data (invalid LZW code)");
            emit(code);
            prev = code;
            continue;
        }
        unsigned char head;
        if (code < next) {
            head = first[code];
            emit(code);
        } else if (code == next && next < 4096) {
            head = first[prev];
            // The new string is prev's string + its own first character.
            prefix[next] = static_cast<std::uint16_t>(prev);
            suffix[next] = head;
            first[next] = first[prev];
            length[next] = static_cast<std::uint16_t>(length[prev] + 1);
            emit(code);
            ++next;
            if (next == (1 << size) && size < 12) ++size;
            prev = code;
            continue;
        } else {
            throw std::runtime_error("corrupt GIF data (invalid LZW code)");
        }
        if (next < 4096) {
            prefix[next] = static_cast<std::uint16_t>(prev);
            suffix[next] = head;
            first[next] = first[prev];
            length[next] = static_cast<std::uint16_t>(length[prev] + 1);
            ++next;
            if (next == (1 << size) && size < 12) ++size;
        }
        prev = code;
    }
    return out;
}

}  // namespace

GifHeader probe_gif(const Bytes& data) { return parse(data).header; }

cv::Mat decode_gif_first_frame(const Bytes& data) {
    const Parsed p = parse(data);
    if (!p.header.problem.empty()) throw std::runtime_error(p.header.problem);
    if (p.header.truncated || !p.frame) throw std::runtime_error("truncated GIF data (ends before the first frame)");
    const Frame& f = *p.frame;
    const int W = static_cast<int>(p.header.width), H = static_cast<int>(p.header.height);
    if (W == 0 || H == 0)
        throw std::runtime_error("GIF image is empty (" + std::to_string(W) + "x" + std::to_string(H) + ")");
    const std::vector<unsigned char> indices = decode_lzw(data, f);

    // Canvas of palette indices: PIL fills it with the transparent index, or 0.
    cv::Mat canvas(H, W, CV_8UC1, cv::Scalar(f.transparent.value_or(0)));
    const std::vector<std::size_t> rows = row_order(f.height, f.interlaced);
    for (std::size_t k = 0; f.width > 0 && k < f.height; ++k)  // a 0-wide frame has no pixels to copy
        std::copy_n(indices.data() + k * f.width, f.width,
                    canvas.ptr<unsigned char>(static_cast<int>(f.y + rows[k])) + f.x);
    if (!f.palette) return canvas;  // PIL's mode "L": the indices are the gray levels

    // PIL's palette starts as a gray ramp; the colour table overwrites its first entries.
    std::array<cv::Vec3b, 256> bgr;
    for (int i = 0; i < 256; ++i)
        bgr[i] = cv::Vec3b(static_cast<unsigned char>(i), static_cast<unsigned char>(i), static_cast<unsigned char>(i));
    for (std::size_t i = 0; i < std::min<std::size_t>(f.palette_entries, 256); ++i)
        bgr[i] = cv::Vec3b(f.palette[3 * i + 2], f.palette[3 * i + 1], f.palette[3 * i]);
    cv::Mat out(H, W, CV_8UC3);
    for (int y = 0; y < H; ++y) {
        const unsigned char* in = canvas.ptr<unsigned char>(y);
        cv::Vec3b* o = out.ptr<cv::Vec3b>(y);
        for (int x = 0; x < W; ++x) o[x] = bgr[in[x]];
    }
    return out;
}

}  // namespace vit
