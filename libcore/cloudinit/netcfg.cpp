#include "cloudinit/netcfg.hpp"

#include <arpa/inet.h>

#include "base/error.hpp"
#include "base/util.hpp"

namespace ceso {

namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::string IpAddress::text() const {
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf)) return "?";
  return buf;
}

bool IpAddress::is_unspecified() const {
  for (unsigned i = 0; i < bits() / 8; ++i)
    if (bytes[i] != 0) return false;
  return true;
}

bool IpAddress::is_loopback() const {
  if (!v6) return bytes[0] == 127;
  for (int i = 0; i < 15; ++i)
    if (bytes[i] != 0) return false;
  return bytes[15] == 1;
}

bool IpAddress::is_multicast() const { return v6 ? bytes[0] == 0xff : (bytes[0] & 0xf0) == 0xe0; }

bool IpAddress::is_link_local() const {
  if (v6) return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80;
  return bytes[0] == 169 && bytes[1] == 254;
}

std::string IpPrefix::text() const { return address.text() + "/" + std::to_string(length); }

IpAddress IpPrefix::network() const {
  IpAddress n = address;
  for (unsigned i = 0; i < n.bits() / 8; ++i) {
    unsigned first_bit = i * 8;
    if (first_bit >= length) {
      n.bytes[i] = 0;
    } else if (length - first_bit < 8) {
      n.bytes[i] &= static_cast<uint8_t>(0xff << (8 - (length - first_bit)));
    }
  }
  return n;
}

bool IpPrefix::contains(const IpAddress& a) const {
  if (a.v6 != address.v6) return false;
  IpPrefix other{a, length};
  return other.network() == network();
}

bool IpPrefix::is_broadcast() const {
  if (address.v6 || length >= 31) return false;
  uint32_t host_mask = length == 0 ? 0xffffffffu : (0xffffffffu >> length);
  uint32_t v = (uint32_t(address.bytes[0]) << 24) | (uint32_t(address.bytes[1]) << 16) |
               (uint32_t(address.bytes[2]) << 8) | uint32_t(address.bytes[3]);
  return (v & host_mask) == host_mask;
}

IpAddress parse_ip_address(std::string_view text) {
  IpAddress a;
  std::string s(text);
  if (s.find(':') != std::string::npos) {
    a.v6 = true;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return a;
  } else if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    return a;
  }
  bad_input(quote(text) + " is not an IPv4 or IPv6 address");
}

IpPrefix parse_ip_prefix(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos)
    bad_input(quote(text) + " has no prefix length (write it as ADDRESS/LENGTH, e.g. 10.0.0.5/24)");
  IpPrefix p;
  try {
    p.address = parse_ip_address(text.substr(0, slash));
  } catch (const Error&) {
    bad_input(quote(text) + " is not an IPv4 or IPv6 address with a prefix length");
  }
  std::string_view len = text.substr(slash + 1);
  if (!all_digits(len) || len.size() > 3 || std::stoul(std::string(len)) > p.address.bits())
    bad_input(quote(text) + ": the prefix length must be a number from 0 to " +
              std::to_string(p.address.bits()));
  p.length = static_cast<unsigned>(std::stoul(std::string(len)));
  return p;
}

std::string normalize_mac(std::string_view text) {
  std::string out;
  bool ok = text.size() == 17;
  for (size_t i = 0; ok && i < text.size(); ++i) {
    char c = text[i];
    if (i % 3 == 2) {
      ok = c == ':' || c == '-';
      if (ok && c != text[2]) ok = false;  // one separator throughout
      out += ':';
    } else {
      ok = hex_value(c) >= 0;
      out += (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  if (!ok) bad_input(quote(text) + " is not a MAC address (six hex pairs: 00:50:56:12:34:56)");
  if (hex_value(out[1]) & 1) bad_input(quote(text) + " is a multicast MAC address, not a NIC's");
  return out;
}

bool is_host_label(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s)
    if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') && c != '-')
      return false;
  return true;
}

bool is_domain_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    if (!is_host_label(s.substr(start, dot == std::string_view::npos ? dot : dot - start)))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace ceso
