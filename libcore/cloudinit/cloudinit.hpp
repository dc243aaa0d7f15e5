// cloud-init guestinfo for VMware's datasource, built offline.
//
// The flow:   spec record / flags ──SpecReader──▶ CloudInitSpec
//             CloudInitSpec ──render_documents──▶ GuestInfoDocuments (plain YAML texts)
//             GuestInfoDocuments ──encode_guestinfo──▶ GuestInfo (guestinfo.* key/values)
// build_guestinfo() does the last two steps; decode_guestinfo() reverses the
// last one (ceso-clone reads a source VM's guestinfo, renders new metadata and
// network for the clone and keeps the user-data).
//
// Facts this module respects (docs/cloudinit.md, docs/esxi.md): network
// config lives in the metadata under "network" (never in vendordata), netplan
// v2 with `routes: [{to: default, via: …}]`, metadata always carries
// instance-id and local-hostname, each encoded value stays under 64 KiB.
// YAML is parsed by yaml-cpp and written by our own writer; gzip by libdeflate
// (zlib to decompress); base64 through OpenSSL.
//
// Errors: ceso::Error with Exit::bad_input for anything wrong in the input,
// naming the field (`field "ip"` for records, `--ip` for flags).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/codec.hpp"  // base64/gzip (OpenSSL EVP, libdeflate, zlib)
#include "base/records.hpp"
#include "cloudinit/netcfg.hpp"

namespace ceso {

// ---------------------------------------------------------------- the spec

struct RouteSpec {
  std::optional<IpPrefix> to;  // nullopt: the default route of via's family
  IpAddress via;
};

struct NicSpec {
  std::string name;  // --nic: interface name, or a glob ("en*"); "" = default
  std::string mac;   // --mac, normalized; "" = match by name
  std::vector<IpPrefix> addresses;
  std::optional<IpAddress> gateway4, gateway6;
  std::vector<RouteSpec> routes;
  std::vector<IpAddress> dns;
  std::vector<std::string> search;
  std::optional<int> mtu;
  bool dhcp4 = false, dhcp6 = false;
};

struct UserSpec {
  std::string name;                   // "" = "ubuntu" when any other user setting is given
  std::vector<std::string> ssh_keys;  // validated OpenSSH public key lines
  std::string password_hash;          // crypt(3) hash
  std::string sudo;                   // sudoers rule; "" = no sudo
  std::vector<std::string> groups;
  std::string shell;
  bool configured() const {
    return !name.empty() || !ssh_keys.empty() || !password_hash.empty() || !sudo.empty() ||
           !groups.empty() || !shell.empty();
  }
};

struct WriteFileSpec {
  std::string path;     // absolute path in the VM
  std::string content;  // bytes of the local file
  unsigned mode = 0644;
};

// User-data given by the user (--user-data FILE), loaded once and shared by
// every spec that names the same file.
struct UserDataFile;  // opaque: the text and, for #cloud-config, its parsed YAML

// Load user-data text; `origin` names it in messages. A "#cloud-config"
// document must be valid YAML with a mapping at the top (it is merged with the
// generated keys); scripts ("#!"), MIME multipart and cloud-init's other
// formats are kept as they are. Throws Error(bad_input).
std::shared_ptr<const UserDataFile> load_user_data(std::string text, std::string_view origin);

// Network config given by the user (--network-config FILE): used as is, after
// checking it is YAML with "version: 1|2" (at the top or under "network").
struct NetworkConfigFile;
std::shared_ptr<const NetworkConfigFile> load_network_config(std::string text,
                                                             std::string_view origin);

struct CloudInitSpec {
  std::string name;         // VM name for the output record; default: hostname
  std::string hostname;     // one RFC 1123 label
  std::string fqdn;         // optional
  std::string instance_id;  // SpecReader fills in new_instance_id() when absent
  std::vector<NicSpec> nics;
  std::shared_ptr<const NetworkConfigFile> network_config;  // instead of nics
  UserSpec user;
  std::vector<std::string> packages;
  std::vector<std::string> runcmd;
  std::vector<WriteFileSpec> write_files;
  std::string timezone;
  std::string locale;
  std::shared_ptr<const UserDataFile> user_data;
  bool cleanup = false;  // metadata cleanup-guestinfo: [userdata]
};

// A fresh instance-id: HOSTNAME-YYYYMMDDTHHMMSSZ-<12 random hex digits>
// (48 bits from RAND_bytes), unique per call in practice.
std::string new_instance_id(std::string_view hostname);

// ------------------------------------------------------- spec records

// Field names of a spec record, from the one field table
// (cloudinit/fields.hpp): the tool's long option names with '-' turned
// into '_' (plus "nics", an array of objects with the NIC fields). Repeatable
// options are arrays (a single string is accepted too). "type" may also be
// present, with the value "spec"; any other field is refused.
const std::vector<std::string_view>& spec_field_names();
// The NIC fields, which may appear at the top level (one NIC) or in "nics".
const std::vector<std::string_view>& nic_field_names();

// How errors name a field: `field "ssh_key"` (records) or `--ssh-key` (flags).
enum class FieldStyle { record, flag };

// Reads spec records into CloudInitSpecs. Files named by records or flags
// (user_data, network_config, ssh_key_file, write_file) are read and parsed
// once per path and shared, so a fleet of specs naming one file costs one read.
class SpecReader {
 public:
  SpecReader();
  ~SpecReader();
  SpecReader(const SpecReader&) = delete;
  SpecReader& operator=(const SpecReader&) = delete;

  // A complete spec. Unknown fields, a missing hostname (and fqdn), invalid
  // values, unreadable files → Error(bad_input) naming the field.
  CloudInitSpec read(const ordered_json& fields, FieldStyle style = FieldStyle::record);
  // Checks the fields that are present without requiring any (flags that
  // serve as defaults for a stream of records).
  void check(const ordered_json& fields, FieldStyle style);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Flags as defaults for records: a record's field replaces the default of
// the same name. A record with "nics" or "network_config" also drops the
// defaults' other NIC fields (nic mac ip gateway gateway6 route dhcp; with
// "network_config" also dns search mtu, which otherwise stay defaults for
// every NIC). A record with top-level NIC fields drops the defaults' "nics"
// and "network_config".
ordered_json merge_spec_fields(const ordered_json& defaults, const ordered_json& record);

// ------------------------------------------------------- guestinfo

enum class GuestInfoEncoding { gzip_base64, base64, none };

std::string_view encoding_name(GuestInfoEncoding e);  // "gzip+base64", "base64", "none"
// Accepts cloud-init's names: gzip+base64, gz+b64, base64, b64, none.
std::optional<GuestInfoEncoding> parse_encoding(std::string_view name);

// The plain documents, as a person would review them (and as NoCloud's
// seed files: meta-data, user-data, network-config).
struct GuestInfoDocuments {
  std::string metadata;    // YAML, without the network keys
  std::string network;     // network config (YAML); "" = none: cloud-init's DHCP fallback
  std::string userdata;    // "#cloud-config…", a script or MIME; "" = none
  std::string vendordata;  // only filled by decode_guestinfo
};

// The VMware guestinfo: ordered ExtraConfig keys and values.
struct GuestInfo {
  std::vector<std::pair<std::string, std::string>> values;  // "guestinfo.metadata", …
  GuestInfoDocuments documents;
  std::string instance_id;
  std::string hostname;
  const std::string* find(std::string_view key) const;
};

// Largest encoded value the guest RPC channel carries: each value must be
// smaller than this (64 KiB).
constexpr size_t kGuestInfoValueLimit = 64 * 1024;

GuestInfoDocuments render_documents(const CloudInitSpec& spec);
// Puts the network config into the metadata ("network" and, when encoded,
// "network.encoding") and encodes metadata and user-data. Throws
// Error(bad_input) naming the key when a value reaches kGuestInfoValueLimit,
// or when --encoding none meets a document that is not UTF-8 text.
GuestInfo encode_guestinfo(const GuestInfoDocuments& docs, GuestInfoEncoding encoding);
GuestInfo build_guestinfo(const CloudInitSpec& spec, GuestInfoEncoding encoding);

// The reverse of encode_guestinfo for guestinfo read from a VM: decodes
// metadata, user-data and vendordata (rejecting unknown encodings, which
// cloud-init would silently take as plain text), takes the network out of
// the metadata. instance_id/hostname are filled from the metadata.
GuestInfo decode_guestinfo(const std::map<std::string, std::string, std::less<>>& values);

// The "guestinfo" field of a record (ceso-cloudinit's output) as ExtraConfig
// pairs. Throws Error(bad_input) naming `origin` when it is not an object of
// "guestinfo.*" keys with string values.
std::vector<std::pair<std::string, std::string>> guestinfo_pairs(const ordered_json& field,
                                                                 const std::string& origin);

// ------------------------------------------------------- helpers

// OpenSSH public key line: "TYPE BASE64 [comment]" where TYPE is ssh-ed25519,
// ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com or
// sk-ecdsa-sha2-nistp256@openssh.com and the decoded blob is a well-formed
// key of that type. Throws Error(bad_input).
void check_ssh_public_key(std::string_view line);
// Keys of an authorized_keys-style text: blank and '#' lines skipped, each
// other line checked; messages name `origin` and the line number.
std::vector<std::string> ssh_keys_from_text(std::string_view text, std::string_view origin);

// A .vmx value in double quotes, escaped as VMware's dictionary writer does
// (open-vm-tools lib/dict/dictll.c): '"', '|', DEL and control characters
// except tab become |XX (upper-case hex).
std::string vmx_quote(std::string_view value);
// POSIX shell word: unchanged when made only of safe characters, otherwise in
// single quotes ('\'' for a quote).
std::string shell_quote(std::string_view s);

}  // namespace ceso
