// Reading numbers out of image headers: big- and little-endian integers and the unsigned decimals of text
// headers (PNM, PAM, PFM, Radiance HDR). Shared by the header probes, the GIF and the HDR decoders.
// Bounds are the caller's: each reader takes as many bytes at `p` as its name says.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace vit::bytes {

inline std::uint32_t be16(const unsigned char* p) { return (std::uint32_t{p[0]} << 8) | p[1]; }
inline std::uint32_t be32(const unsigned char* p) { return (be16(p) << 16) | be16(p + 2); }
inline std::uint32_t le16(const unsigned char* p) { return (std::uint32_t{p[1]} << 8) | p[0]; }
inline std::uint32_t le24(const unsigned char* p) { return (std::uint32_t{p[2]} << 16) | le16(p); }
inline std::uint32_t le32(const unsigned char* p) { return (std::uint32_t{p[3]} << 24) | le24(p); }

inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// The unsigned decimal at p[pos] (p holds n bytes), saturated at 2^40 (more than any decoder accepts); `pos`
// moves past its digits. False, with `pos` unchanged, when p[pos] is not a digit.
inline bool read_decimal(const unsigned char* p, std::size_t n, std::size_t& pos, std::uint64_t& v) {
    if (pos >= n || !is_digit(p[pos])) return false;
    v = 0;
    while (pos < n && is_digit(p[pos])) v = std::min<std::uint64_t>(v * 10 + (p[pos++] - '0'), 1ull << 40);
    return true;
}

}  // namespace vit::bytes
