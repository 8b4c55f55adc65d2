// Input enumeration: files, directories (sorted, optionally recursive) and newline/NUL-separated path lists,
// yielded lazily so a list piped from `find` is processed while it is still being written.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "errors.hpp"

namespace vit {

// Shards are cut from the input order in blocks of this many positions, whatever the batch size: shards run with
// different --batch-size values still partition the inputs exactly. Batches never straddle a block boundary
// (PipelineOptions::align), so the shards of a run reproduce the unsharded run with the same batch size bit for bit.
inline constexpr std::int64_t kShardBlock = 256;

// The longest path a list entry may hold (Linux PATH_MAX); a longer entry means the stream is not a path list.
inline constexpr std::size_t kMaxListEntry = 4096;
// This many empty entries in a row (64 KiB of separators: `-0 --files-from /dev/zero`) end the list with an error.
inline constexpr std::size_t kMaxEmptyEntries = 65536;

// One input: its path (as given; "-" is stdin), its position in the full input order (before sharding and
// skipping), and an error when the input is known to be unusable before decoding (an unreadable directory).
struct SourceItem {
    std::string path;
    std::uint64_t position = 0;
    std::string error;
};

// A path the inputs must not include (the output file): a (device, inode) pair and the reason given.
struct RefusedFile {
    std::uint64_t dev = 0, ino = 0;
    std::string reason;  // e.g. "is also the --output file"
};

// Thrown when an input is one of InputOptions::refuse: the run must stop and leave that file alone.
struct RefusedInput : InputError {
    using InputError::InputError;
};

struct InputOptions {
    bool recursive = false;
    // Extensions (lower case, with dot) a directory listing picks up; files named explicitly are always taken.
    std::vector<std::string> extensions = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp",
                                           ".gif", ".pbm",  ".pgm", ".ppm", ".pnm", ".jp2",  ".jpe",
                                           ".dib", ".sr",   ".ras", ".exr", ".hdr", ".pic",  ".pxm"};
    // A path list read after the positional inputs: a file, a FIFO or "-" (stdin); empty for none.
    std::string list;
    char list_delim = '\n';  // '\0' for find -print0
    // Shard K of N keeps the blocks of `shard_block` positions whose index % N == K (see kShardBlock).
    std::int64_t shard_index = 0;
    std::int64_t shard_count = 1;
    std::int64_t shard_block = kShardBlock;
    const std::set<std::string>* skip = nullptr;  // paths already done (--skip-done)
    std::vector<RefusedFile> refuse;              // files that must not be read as inputs
    // Polled about every 100 ms while the list waits for input: true ends the list (a signal).
    std::function<bool()> cancelled;
};

// Parses "K/N" (0 <= K < N, decimal digits only); throws std::invalid_argument naming the problem.
void parse_shard(const std::string& s, std::int64_t& k, std::int64_t& n);

// Splits "jpg,.PNG" into {".jpg", ".png"}.
std::vector<std::string> parse_extensions(const std::string& s);

class InputList {
public:
    // Opens the list (when there is one) at once, without blocking on a FIFO that has no writer yet. Throws
    // InputError naming the list: missing, unreadable, a directory.
    InputList(std::vector<std::string> args, InputOptions opt);
    ~InputList();
    InputList(const InputList&) = delete;
    InputList& operator=(const InputList&) = delete;

    // Next input in order; false at the end (or when cancelled). Throws InputError naming the list and the entry
    // for a list that is not a path list (a NUL in a newline-separated list, an entry over kMaxListEntry bytes,
    // kMaxEmptyEntries empty entries in a row), a read error, "-" in a list read from stdin, and RefusedInput for
    // a refused file. Unreadable directories yield an item with `error` set; symlink loops and folders with no
    // images go to `warn`.
    bool next(SourceItem& item);
    // Whether reading the list can block waiting for a writer (a pipe, FIFO, terminal or socket, not a file).
    bool list_may_stall() const { return list_may_stall_; }
    std::function<void(const std::string&)> warn;

private:
    bool next_unfiltered(SourceItem& item);
    bool next_list_entry(std::string& entry);
    bool fill_list_buffer();
    void expand_dir(const std::string& dir, std::vector<SourceItem>& out,
                    std::set<std::pair<std::uint64_t, std::uint64_t>>& seen, std::size_t& subdirs_skipped);
    bool wanted_ext(const std::string& path) const;
    void check_refused(const std::string& path) const;

    std::vector<std::string> args_;
    InputOptions opt_;
    std::size_t arg_pos_ = 0;
    std::vector<SourceItem> pending_;  // expansion of the current directory argument
    std::size_t pending_pos_ = 0;
    std::uint64_t position_ = 0;  // index in the full (unsharded) input order

    int list_fd_ = -1;
    bool own_list_fd_ = false, list_eof_ = false, list_may_stall_ = false;
    std::string list_name_;
    std::string list_buf_;
    std::size_t list_pos_ = 0;      // start of the unread part of list_buf_
    std::uint64_t list_entry_ = 0;  // entries read so far (for messages)
    std::size_t empty_run_ = 0;
};

}  // namespace vit
