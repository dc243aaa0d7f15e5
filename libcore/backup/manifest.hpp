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

inline constexpr int kManifestFormat = 1;
inline constexpr const char* kManifestName = "manifest.json";

struct ManifestFile {
  std::string name;           // file in the backup directory: "disk0-web01-flat.vmdk.zst"
  std::string source;         // datastore path it came from; "" for config.json
  std::string kind;           // "vmx" | "nvram" | "descriptor" | "extent" | "config"
  int disk = -1;              // index into the VM's disks for descriptor/extent
  uint64_t size = 0;          // raw bytes
  uint64_t stored_size = 0;   // bytes in the target (compressed)
  std::string sha256;         // of the raw bytes
  std::string stored_sha256;  // of the stored stream
  std::string compression = "zstd";
};

struct Manifest {
  int format = kManifestFormat;
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

  uint64_t bytes_raw() const;
  uint64_t bytes_stored() const;
};

ordered_json manifest_json(const Manifest& m);
// Throws Error(bad_input) naming the field for a malformed manifest, and for a
// format newer than this tool reads.
Manifest manifest_from_json(const std::string& text);

// The catalog row a manifest stands for (status complete).
CatalogEntry catalog_entry(const Manifest& m, const std::string& target_url);

}  // namespace ceso
