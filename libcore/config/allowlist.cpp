#include "config/allowlist.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "base/util.hpp"

namespace ceso {

namespace {

using Address = std::array<uint8_t, 16>;

// a.b.c.d → ::ffff:a.b.c.d
Address mapped(const unsigned char v4[4]) {
  Address a{};
  a[10] = a[11] = 0xff;
  std::memcpy(a.data() + 12, v4, 4);
  return a;
}

// Strict forms only: a full dotted quad, or an IPv6 address (brackets allowed
// around it). `zone` receives whether an IPv6 zone id ("%eth0") was present
// (and removed).
std::optional<Address> strict_address(std::string_view text, bool* zone) {
  std::string s(text);
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  *zone = false;
  if (s.find(':') != std::string::npos) {
    if (size_t pct = s.find('%'); pct != std::string::npos) {
      s.erase(pct);
      *zone = true;
    }
    Address a{};
    if (::inet_pton(AF_INET6, s.c_str(), a.data()) == 1) return a;
    return std::nullopt;
  }
  unsigned char v4[4];
  if (::inet_pton(AF_INET, s.c_str(), v4) == 1) return mapped(v4);
  return std::nullopt;
}

// The loose IPv4 forms the resolver (inet_aton, used by getaddrinfo) and
// curl also read as an address: "127.1", "0x7f.1", "2130706433", "0177.0.0.1".
// Only digits, hex letters, x and dots are considered (inet_aton would
// accept "1.2.3.4 anything", ignoring what follows a space).
std::optional<Address> loose_ipv4(std::string_view text) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](unsigned char c) {
        return std::isxdigit(c) || c == 'x' || c == 'X' || c == '.';
      }))
    return std::nullopt;
  std::string s(text);
  in_addr in{};
  if (::inet_aton(s.c_str(), &in) == 0) return std::nullopt;
  unsigned char v4[4];
  std::memcpy(v4, &in.s_addr, 4);  // network byte order, as inet_pton's
  return mapped(v4);
}

bool in_network(const Address& a, const AllowEntry& e) {
  int bits = e.prefix;
  for (size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a[i] & mask) != (e.address[i] & mask)) return false;
  }
  return true;
}

bool name_char(unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; }

std::string normalized_name(std::string_view name) {
  std::string s = ascii_lower(name);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

std::optional<AllowEntry> parse_allow_entry(std::string_view text, std::string* why) {
  AllowEntry e;
  e.text = std::string(text);
  if (text.empty()) {
    *why = "empty entry";
    return std::nullopt;
  }
  bool zone = false;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    std::string_view addr = text.substr(0, slash), bits = text.substr(slash + 1);
    auto a = strict_address(addr, &zone);
    if (!a || zone || (!addr.empty() && addr.front() == '[')) {
      *why = "a network is ADDRESS/BITS with a plain IPv4 or IPv6 address (no brackets or zone id)";
      return std::nullopt;
    }
    const bool v4 = addr.find(':') == std::string_view::npos;
    const int max = v4 ? 32 : 128;
    int n = -1;
    if (!bits.empty() && bits.size() <= 3 &&
        std::all_of(bits.begin(), bits.end(), [](unsigned char c) { return std::isdigit(c); }))
      n = std::stoi(std::string(bits));
    if (n < 0 || n > max) {
      *why = "the prefix length must be a number from 0 to " + std::to_string(max);
      return std::nullopt;
    }
    e.address = *a;
    e.prefix = v4 ? 96 + n : n;
    // Host bits set ("192.0.2.1/24") is most likely a typo for an address
    // or for another network: say which network it would be.
    AllowEntry net = e;
    for (int i = e.prefix; i < 128; ++i)
      net.address[i / 8] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
    if (net.address != e.address) {
      char buf[INET6_ADDRSTRLEN];
      if (v4)
        ::inet_ntop(AF_INET, net.address.data() + 12, buf, sizeof buf);
      else
        ::inet_ntop(AF_INET6, net.address.data(), buf, sizeof buf);
      *why = "host bits are set; the network is " + std::string(buf) + "/" + std::string(bits);
      return std::nullopt;
    }
    return e;
  }
  if (auto a = strict_address(text, &zone)) {
    if (zone) {
      *why = "a zone id (%…) is not allowed: list the address, it matches on every interface";
      return std::nullopt;
    }
    e.address = *a;
    e.prefix = 128;
    return e;
  }
  if (loose_ipv4(text)) {
    *why =
        "a short or numeric IPv4 form, which the resolver reads as an address; write the "
        "address in full (a.b.c.d) or a network";
    return std::nullopt;
  }
  if (text.find('*') != std::string_view::npos) {
    *why = "wildcards are not supported: list each host name, or the hosts' network";
    return std::nullopt;
  }
  std::string name = normalized_name(text);
  bool ok = !name.empty() && std::all_of(name.begin(), name.end(), name_char) &&
            name.front() != '.' && name.find("..") == std::string::npos;
  if (!ok) {
    *why = "not a host name, an address or a network (ADDRESS/BITS)";
    return std::nullopt;
  }
  e.name = name;
  return e;
}

bool host_allowed(const std::vector<AllowEntry>& list, std::string_view host) {
  bool zone = false;
  std::optional<Address> address = strict_address(host, &zone);
  if (!address) address = loose_ipv4(host);
  if (address) {
    return std::any_of(list.begin(), list.end(), [&](const AllowEntry& e) {
      return !e.is_name() && in_network(*address, e);
    });
  }
  if (host.find(':') != std::string_view::npos || host.find('[') != std::string_view::npos)
    return false;  // not an address, and no name has these
  std::string name = normalized_name(host);
  if (name.empty()) return false;
  return std::any_of(list.begin(), list.end(),
                     [&](const AllowEntry& e) { return e.is_name() && e.name == name; });
}

}  // namespace ceso
