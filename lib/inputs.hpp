// Input enumeration: files, directories (sorted, optionally recursive) and newline/NUL-separated path lists,
// yielded lazily so a list piped from `find` is processed while it is still being written.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace vit {

struct InputOptions {
    bool recursive = false;
    // Extensions (lower case, with dot) a directory listing picks up; files named explicitly are always taken.
    std::vector<std::string> extensions = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif",
                                           ".pbm", ".pgm", ".ppm", ".pnm", ".jp2", ".jpe", ".dib", ".sr", ".ras", ".exr", ".hdr", ".pic", ".pxm"};
    std::istream* list = nullptr;    // --files-from stream, read after the positional inputs
    char list_delim = '\n';          // '\0' for find -print0
    // --shard K/N: positions are cut into blocks of `shard_block` (the batch size, so every shard batches exactly
    // like the unsharded run) and shard K keeps the blocks whose index % N == K.
    std::int64_t shard_index = 0;
    std::int64_t shard_count = 1;
    std::int64_t shard_block = 1;
    const std::set<std::string>* skip = nullptr;   // paths already done (--skip-done)
};

// Parses "K/N" (0 <= K < N); throws std::invalid_argument naming the problem.
void parse_shard(const std::string& s, std::int64_t& k, std::int64_t& n);

// Splits "jpg,.PNG" into {".jpg", ".png"}.
std::vector<std::string> parse_extensions(const std::string& s);

class InputList {
public:
    InputList(std::vector<std::string> args, InputOptions opt);
    // Next input path in order and its position among all inputs (before sharding and skipping); false at the
    // end. Directory problems (unreadable, symlink loop) go to `warn`.
    bool next(std::string& path, std::uint64_t& position);
    std::function<void(const std::string&)> warn;

private:
    bool next_unfiltered(std::string& path);
    void expand_dir(const std::string& dir, std::vector<std::string>& out, std::set<std::pair<std::uint64_t, std::uint64_t>>& seen,
                    int depth);
    bool wanted_ext(const std::string& path) const;

    std::vector<std::string> args_;
    InputOptions opt_;
    std::size_t arg_pos_ = 0;
    std::vector<std::string> pending_;   // expansion of the current directory argument
    std::size_t pending_pos_ = 0;
    std::uint64_t position_ = 0;         // index in the full (unsharded) input order
};

}  // namespace vit
