// Radiance HDR header probe and RGBE decoder (see hdr.hpp).
#include "hdr.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "byte_reader.hpp"

namespace vit {
namespace {

using Bytes = std::vector<unsigned char>;

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

[[noreturn]] void truncated() { throw std::runtime_error("truncated Radiance HDR data"); }

}  // namespace

HdrHeader probe_hdr(const Bytes& d) {
    HdrHeader info;
    auto line_at = [&](std::size_t pos, std::string& out) -> std::size_t {  // offset after the line, 0 at the end
        const auto nl = std::find(d.begin() + pos, d.end(), '\n');
        if (nl == d.end()) return 0;
        out.assign(d.begin() + pos, nl);
        return static_cast<std::size_t>(nl - d.begin()) + 1;
    };
    std::string line;
    std::size_t pos = line_at(0, line), next = 0;  // after the "#?RADIANCE" line
    bool format_ok = false;
    while (pos && (next = line_at(pos, line)) && !line.empty()) {
        format_ok = format_ok || line == "FORMAT=32-bit_rle_rgbe";
        pos = next;
    }
    if (!pos || !next) {
        info.truncated = true;
        return info;
    }
    pos = next;  // after the empty line
    if (!format_ok) {
        info.problem = "unsupported Radiance HDR data (no FORMAT=32-bit_rle_rgbe line)";
        return info;
    }
    const std::size_t data = line_at(pos, line);
    const auto* text = reinterpret_cast<const unsigned char*>(line.data());
    std::uint64_t h = 0, w = 0;
    std::size_t at = 2;
    auto number = [&](std::uint64_t& v) {
        while (at < line.size() && line[at] == ' ') ++at;
        return bytes::read_decimal(text, line.size(), at, v);
    };
    bool ok = data && line.rfind("-Y", 0) == 0 && number(h);
    while (ok && at < line.size() && line[at] == ' ') ++at;
    ok = ok && line.compare(at, 2, "+X") == 0 && (at += 2, number(w));
    if (!ok) {
        info.problem = "unsupported Radiance HDR data (resolution line is not \"-Y H +X W\")";
        return info;
    }
    info.has_size = true;
    info.width = w;
    info.height = h;
    info.data = data;
    return info;
}

cv::Mat decode_hdr(const Bytes& d) {
    const HdrHeader l = probe_hdr(d);
    if (!l.problem.empty()) throw std::runtime_error(l.problem);
    if (!l.has_size) truncated();
    const int W = static_cast<int>(l.width), H = static_cast<int>(l.height);
    cv::Mat img(H, W, CV_32FC3);
    float* out = img.ptr<float>();
    const std::size_t total = static_cast<std::size_t>(W) * static_cast<std::size_t>(H);
    std::size_t pos = l.data, done = 0;
    auto flat = [&]() {
        if ((d.size() - pos) / 4 < total - done) truncated();
        for (; done < total; ++done, pos += 4) rgbe_to_bgr(&d[pos], out + 3 * done);
    };
    if (W < 8 || W > 0x7fff) {
        flat();
        return img;
    }
    const auto w = static_cast<std::size_t>(W);
    std::vector<unsigned char> line(4 * w);  // [4, W]: r, g, b, e planes
    for (int y = 0; y < H; ++y) {
        if (d.size() - pos < 4) truncated();
        if (d[pos] != 2 || d[pos + 1] != 2 || (d[pos + 2] & 0x80)) {
            flat();
            return img;
        }
        if (((d[pos + 2] << 8) | d[pos + 3]) != W)
            throw std::runtime_error("corrupt Radiance HDR data (wrong scanline width)");
        pos += 4;
        for (std::size_t c = 0; c < 4; ++c) {
            unsigned char* p = &line[c * w];
            unsigned char* const end = p + w;
            while (p < end) {
                if (d.size() - pos < 2) truncated();
                const int code = d[pos];
                const bool run = code > 128;
                const int count = run ? code - 128 : code;
                if (count == 0 || count > end - p)
                    throw std::runtime_error("corrupt Radiance HDR data (bad run length)");
                if (run) {
                    std::fill(p, p + count, d[pos + 1]);
                    pos += 2;
                } else {
                    if (d.size() - pos - 1 < static_cast<std::size_t>(count)) truncated();
                    std::copy(&d[pos + 1], &d[pos + 1] + count, p);
                    pos += 1 + static_cast<std::size_t>(count);
                }
                p += count;
            }
        }
        for (std::size_t x = 0; x < w; ++x, ++done) {
            const unsigned char q[4] = {line[x], line[w + x], line[2 * w + x], line[3 * w + x]};
            rgbe_to_bgr(q, out + 3 * done);
        }
    }
    return img;
}

}  // namespace vit
