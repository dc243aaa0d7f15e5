// Addresses, prefixes, MAC addresses and host names: parsing and checks.
//
// Parsing goes through inet_pton/inet_ntop, so the accepted syntax is the
// C library's and the text we print back is canonical (IPv6 compressed and
// lower-case). Every parse_* function throws Error(Exit::bad_input) with a
// message that quotes the offending text; callers prefix it with the field or
// option it came from.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ceso {

// An IPv4 or IPv6 address.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // network byte order; IPv4 uses the first 4

  unsigned bits() const { return v6 ? 128 : 32; }
  std::string text() const;  // canonical form, e.g. "2001:db8::5"
  bool is_unspecified() const;
  bool is_loopback() const;
  bool is_multicast() const;
  bool is_link_local() const;  // fe80::/10 or 169.254.0.0/16
  bool operator==(const IpAddress&) const = default;
};

// An address with a prefix length: "10.0.0.5/24", "2001:db8::5/64".
struct IpPrefix {
  IpAddress address;
  unsigned length = 0;

  std::string text() const;  // canonical "address/length"
  // True when `a` is in this prefix's subnet (same family, same leading bits).
  bool contains(const IpAddress& a) const;
  // The subnet's first address (host bits cleared).
  IpAddress network() const;
  // True when the host bits are all zero ("10.0.0.0/8", not "10.0.0.1/8").
  bool is_network() const { return network() == address; }
  // IPv4 only, prefix < 31: the all-ones host address.
  bool is_broadcast() const;
};

IpAddress parse_ip_address(std::string_view text);
// The "/length" part is required.
IpPrefix parse_ip_prefix(std::string_view text);

// "00:50:56:AB:cd:ef" or "00-50-56-ab-cd-ef" → "00:50:56:ab:cd:ef".
// Rejects group (multicast) addresses, which no NIC carries.
std::string normalize_mac(std::string_view text);

// One RFC 1123 label: 1–63 letters, digits and '-', not starting or ending
// with '-'.
bool is_host_label(std::string_view s);
// Dot-separated RFC 1123 labels, at most 253 characters, no trailing dot.
bool is_domain_name(std::string_view s);

}  // namespace ceso
