// NumPy .npy files (format version 1.0): a float32 matrix written as numpy.save would.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace vit {

// The header of a little-endian float32 C-order array of shape (rows, cols): magic, version 1.0, header length,
// the dict padded with spaces to a multiple of 64 bytes and ended by '\n'.
// `rows_width` > 0 right-aligns the row count in that many characters, so a streamed file's header can be
// rewritten with the final count at the same length.
std::string npy_header_f32(std::uint64_t rows, std::uint64_t cols, int rows_width = 0);

}  // namespace vit
