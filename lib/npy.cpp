// .npy header (see npy.hpp).
#include "npy.hpp"

namespace vit {

std::string npy_header_f32(std::uint64_t rows, std::uint64_t cols, int rows_width) {
    std::string r = std::to_string(rows);
    if (static_cast<int>(r.size()) < rows_width) r.insert(0, static_cast<std::size_t>(rows_width) - r.size(), ' ');
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + r + ", " + std::to_string(cols) + "), }";
    const std::size_t prefix = 10;  // magic (6) + version (2) + header length (2)
    std::size_t total = prefix + dict.size() + 1;
    const std::size_t pad = (64 - total % 64) % 64;
    dict.append(pad, ' ');
    dict += '\n';
    const std::size_t len = dict.size();
    std::string h = "\x93NUMPY";
    h += '\x01';
    h += '\x00';
    h += static_cast<char>(len & 0xff);
    h += static_cast<char>((len >> 8) & 0xff);
    return h + dict;
}

}  // namespace vit
