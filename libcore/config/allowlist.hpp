// The endpoint allowlist: which hosts ceso may connect to (config key
// allow_hosts, docs/configuration.md "Allowed hosts").
//
// Pure matching, no I/O and no DNS. A host name is allowed only when it is
// listed by name; an address only when it is inside a listed address or
// network. A name is never resolved to compare its addresses: the answer
// would come from DNS, which the allowlist is meant not to trust (and the
// address ceso then connects to could differ from the one checked), and a
// refused host must be refused before any packet leaves the machine.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ceso {

// One allow_hosts entry.
struct AllowEntry {
  std::string text;  // as written, for messages
  // A host name (lower case, no trailing dot), or else a network.
  std::string name;
  // The network: IPv4 stored as IPv4-mapped IPv6 (::ffff:a.b.c.d, prefix
  // 96 + n), so an IPv4 address and its mapped IPv6 form are the same.
  std::array<uint8_t, 16> address{};
  int prefix = 0;
  bool is_name() const { return !name.empty(); }
};

// Parses one entry: a host name ("esxi1.lab", any case, a trailing dot
// ignored), an address ("192.0.2.10", "2001:db8::1", "[2001:db8::1]") or a
// network in CIDR form ("192.0.2.0/24", "2001:db8::/32"). nullopt with `why`
// set for anything else: a network with host bits set, a zone id, a short or
// numeric IPv4 form ("10.1", "0x0a000001", which the resolver would read as
// an address), a wildcard, characters no host name has.
std::optional<AllowEntry> parse_allow_entry(std::string_view text, std::string* why);

// Whether `host` (as in a URL: a name, an IPv4 address, an IPv6 address with
// or without brackets and zone id) is allowed by `list`:
//   - an IPv4 address in any form the resolver accepts ("127.1", "0x7f000001"
//     mean 127.0.0.1) or an IPv6 address (zone id ignored; ::ffff:a.b.c.d is
//     a.b.c.d) is matched against the listed addresses and networks only;
//   - anything else is a name, compared case-insensitively and without a
//     trailing dot against the listed names only.
// "localhost" and 127.0.0.1 are not special: list them to allow them.
bool host_allowed(const std::vector<AllowEntry>& list, std::string_view host);

}  // namespace ceso
