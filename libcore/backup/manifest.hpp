// manifest.json: what a backup directory holds. Its presence is what makes a
// backup complete (it is written last, after every file is synced), and it
// carries enough to rebuild the catalog row and to recreate the VM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/catalog.hpp"
#include "base/records.hpp"

namespace ceso {

// 1: every file one zstd stream (NAME.zst). 2: disk data files as chunks
// (NAME.idx, backup/chunks.hpp); the others as in 1. Both are read.
inline constexpr int kManifestFormat = 2;
inline constexpr const char* kManifestName = "manifest.json";

struct ManifestFile {
  std::string name;          // file in the backup directory: "disk0-web01-flat.vmdk.zst"
  std::string source;        // datastore path it came from; "" for config.json
  std::string kind;          // "vmx" | "nvram" | "descriptor" | "extent" | "config"
  int disk = -1;             // index into the VM's disks for descriptor/extent
  uint64_t size = 0;         // raw bytes
  uint64_t stored_size = 0;  // bytes in the target (compressed)
  std::string sha256;        // of the raw bytes; "" for a file written with CBT (not read whole)
  // The stored stream's hash: XXH3-128 (32 hex digits, as `xxhsum -H2`
  // prints it) for NAME.zst files written since it replaced SHA-256; SHA-256
  // in older manifests and for format 2 indexes. An entry has one of the two.
  std::string stored_sha256;
  std::string stored_xxh128;
  std::string compression = "zstd";  // "zstd" | "chunks" (format 2: `name` is the index)
  // Chunked files: SHA-256 of the lines "<SHA-256 of chunk i's raw bytes>\n"
  // for every chunk in order, all-zero ones included (chunks_digest). It
  // names the content without a whole read, so a CBT backup has it where it
  // cannot have `sha256`. "" in manifests written before it.
  std::string chunks_sha256;
};

struct Manifest {
  int format = 1;  // 2 when a data file is chunked
  std::string id;
  std::string tool_version;
  std::string mode;                              // hot | cold | off
  int64_t started = 0, finished = 0;             // UTC seconds
  ordered_json vm = ordered_json::object();      // the vm record at backup time
  ordered_json config = ordered_json::object();  // detailed config (ceso-info record)
  ordered_json guestinfo = ordered_json::object();
  std::vector<std::string> tags;
  ordered_json disks = ordered_json::array();  // [{"device_key","file","capacity_bytes"}]
  std::vector<ManifestFile> files;
  ordered_json timings = ordered_json::object();  // phase → seconds
  // What the backup lacks although the host listed it (e.g. an NVRAM it
  // does not serve); absent from the JSON when empty.
  std::vector<std::string> warnings;
  // Format 2: what the run did with the chunks of its data files
  // ("chunks", "zero", "reused", "uploaded", "bytes_uploaded"); absent in 1.
  ordered_json chunk_stats = nullptr;

  uint64_t bytes_raw() const;
  // Bytes this backup added at the target: its own files, plus for format 2
  // the chunks it uploaded (chunks it shares with other backups are not counted).
  uint64_t bytes_stored() const;
};

ordered_json manifest_json(const Manifest& m);
// Throws Error(bad_input) naming the field for a malformed manifest, and for a
// format newer than this tool reads.
Manifest manifest_from_json(const std::string& text);

// The catalog row a manifest stands for (status complete).
CatalogEntry catalog_entry(const Manifest& m, const std::string& target_url);

}  // namespace ceso
