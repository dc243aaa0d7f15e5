// Numbers from the command line: one strict parser for counts, one for sizes,
// one for rates, so every tool refuses the same things the same way.
//
// The grammar is plain ASCII digits, optionally followed by a unit (sizes,
// rates). Refused everywhere: empty text, blanks, a sign ('+' and '-'; '-' is
// taken only by a count whose minimum is negative, and never "-0"), hex,
// exponents ("1e3"), fractions, "nan"/"inf", values that overflow, and values
// outside the option's range. Every error is Error(Exit::usage) naming the
// option and quoting the value: "--memory: '99999999999999G' is more than …".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ceso {

// Maximums of the host (VMware ESXi 8.0 configuration maximums), so a value
// no host takes is refused before anything is sent.
inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kGiB = int64_t{1} << 30;
inline constexpr int64_t kTiB = int64_t{1} << 40;
inline constexpr int64_t kMaxVmMemoryBytes = 24 * kTiB;  // memory per VM
inline constexpr int64_t kMaxVmCpus = 768;               // virtual CPUs per VM
inline constexpr int64_t kMaxDiskBytes = 62 * kTiB;      // one virtual disk (VMFS)

// A whole number from `min` to `max` ("--jobs", "--cpus", "--timeout").
// `option` is the option's name without dashes.
int64_t parse_count(std::string_view option, std::string_view text, int64_t min, int64_t max);

// A size in bytes: digits and an optional binary unit, case-insensitive:
// K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB (all powers of 1024). A bare number
// counts in `bare_unit` bytes. `granule` (> 0): the size must be a whole
// multiple of it (1 MiB for disks, 4 MiB for memory). Refused: 0, and more
// than `max` bytes (the message names `max` in the largest exact unit).
int64_t parse_size(std::string_view option, std::string_view text, int64_t bare_unit,
                   int64_t granule, int64_t max);

// Why `text` is not such a size, "" when it is one (then *bytes is set):
// for options that wrap a size in their own syntax (--disk-grow +10G).
std::string size_error(std::string_view text, int64_t bare_unit, int64_t granule, int64_t max,
                       int64_t* bytes);

// A transfer rate in bytes per second: digits and an optional K, M or G
// (powers of 1024, case-insensitive, "/s" not written). 1 byte/s .. 1 TiB/s.
int64_t parse_rate(std::string_view option, std::string_view text);

// "24 TiB", "512 MiB", "1000 bytes": `bytes` in the largest unit that
// divides it, for messages.
std::string size_text(int64_t bytes);

}  // namespace ceso
