#include "safety/promotion.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/codec.hpp"
#include "base/error.hpp"
#include "base/file.hpp"
#include "base/time.hpp"
#include "base/util.hpp"

namespace ceso {

namespace {

constexpr std::string_view kSignedPrefix = "ceso-promotion-1\n";
constexpr size_t kMaxReason = 1000;
constexpr size_t kMaxGrants = 64;
constexpr size_t kMaxText = 255;  // endpoint, glob, issuer

using Json = nlohmann::json;  // std::map: keys sorted, as the canonical form wants

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

EVP_PKEY* pkey(const std::shared_ptr<void>& p) { return static_cast<EVP_PKEY*>(p.get()); }

std::shared_ptr<void> own(EVP_PKEY* k) {
  return std::shared_ptr<void>(k, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// A PEM file read into a BIO; `st` describes the file read.
std::string read_pem(const std::string& path, std::string_view what, struct stat* st) {
  return *read_file(path, {.what = what, .max_bytes = 64 * 1024}, st);
}

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

Bio memory_bio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
}

void check_ed25519(EVP_PKEY* k, const std::string& path, std::string_view what) {
  if (EVP_PKEY_id(k) == EVP_PKEY_ED25519) return;
  bad_input(std::string(what) + ": " + quote(path) +
            " is not an Ed25519 key (promotions are signed with Ed25519 only)");
}

bool is_hex_id(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

[[noreturn]] void refuse(const std::string& why) { throw Error(why, Exit::policy); }

// "host", "host:port", "[v6]:port", "[v6]", a bare v6 address → host (lower
// case, no brackets) and port (0: none). nullopt when malformed.
std::optional<std::pair<std::string, int>> split_endpoint(std::string_view text) {
  std::string host;
  int port = 0;
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return std::nullopt;
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    host = std::string(text);  // a bare IPv6 address: no port
  } else {
    size_t colon = text.find(':');
    host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) rest = text.substr(colon);
  }
  if (!rest.empty()) {
    std::string_view digits = rest.substr(1);
    if (digits.empty() || digits.size() > 5 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    port = std::stoi(std::string(digits));
    if (port < 1 || port > 65535) return std::nullopt;
  }
  if (host.empty() || host.size() > kMaxText) return std::nullopt;
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '_'))
      return std::nullopt;
  return std::make_pair(ascii_lower(host), port);
}

Json claims_json(const PromotionClaims& c) {
  Json j = Json::object();
  j["v"] = c.version;
  j["id"] = c.id;
  j["issued"] = c.issued;
  j["not_before"] = c.not_before;
  j["expires"] = c.expires;
  j["endpoint"] = c.endpoint;
  Json allow = Json::array();
  for (const auto& g : c.allow) allow.push_back(Json{{"verb", g.verb}, {"vm", g.vm}});
  j["allow"] = allow;
  if (c.max_uses) j["max_uses"] = *c.max_uses;
  j["reason"] = c.reason;
  j["issuer"] = c.issuer;
  j["key"] = c.key;
  return j;
}

std::string canonical(const Json& j) { return j.dump(-1, ' ', true); }

// The field checks shared by signing and verifying; `fail` is called with
// what is wrong.
template <typename Fail>
void check_claims(const PromotionClaims& c, Fail fail) {
  if (c.version != kPromotionVersion)
    fail("version " + std::to_string(c.version) + " is not supported (this ceso reads " +
         std::to_string(kPromotionVersion) + ")");
  if (!is_hex_id(c.id)) fail("field 'id' is not 32 lower-case hex digits");
  if (c.not_before <= 0 || c.expires <= 0 || c.issued <= 0)
    fail("fields 'issued', 'not_before' and 'expires' must be positive Unix times");
  if (c.expires <= c.not_before) fail("it expires before it becomes valid");
  if (c.expires - c.not_before > kPromotionMaxLifetime)
    fail("its lifetime of " + std::to_string(c.expires - c.not_before) +
         " s is longer than the cap of " + std::to_string(kPromotionMaxLifetime) + " s (24h)");
  if (!split_endpoint(c.endpoint)) fail("field 'endpoint' is not a host or host:port");
  if (c.allow.empty()) fail("field 'allow' is empty");
  if (c.allow.size() > kMaxGrants)
    fail("field 'allow' has more than " + std::to_string(kMaxGrants) + " entries");
  const auto& verbs = promotion_verbs();
  for (const auto& g : c.allow) {
    if (std::find(verbs.begin(), verbs.end(), g.verb) == verbs.end())
      fail("verb " + quote(g.verb) + " is not one of " + join(verbs, ", "));
    if (g.vm.empty() || g.vm.size() > kMaxText || !printable_ascii(g.vm))
      fail("VM glob " + quote(g.vm) + " is empty, too long or not printable ASCII");
  }
  if (c.max_uses && (*c.max_uses < 1 || *c.max_uses > 1000000))
    fail("field 'max_uses' is not from 1 to 1000000");
  if (c.reason.empty() || c.reason.size() > kMaxReason)
    fail("field 'reason' is empty or longer than " + std::to_string(kMaxReason) + " bytes");
  if (c.issuer.empty() || c.issuer.size() > kMaxText) fail("field 'issuer' is empty or too long");
  if (c.key.size() != 64) fail("field 'key' is not a key id");
}

// The two base64 parts of a token; Error(policy) when it has no such shape.
std::pair<std::string, std::string> split_token(std::string_view token) {
  if (token.size() > kPromotionMaxBytes) refuse("the token is larger than 16 KiB");
  if (!token.empty() && token.back() == '\n') token.remove_suffix(1);
  if (token.substr(0, kPromotionPrefix.size()) != kPromotionPrefix)
    refuse("it is not a ceso promotion token (it does not start with " + quote(kPromotionPrefix) +
           ")");
  std::string_view rest = token.substr(kPromotionPrefix.size());
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos || rest.find('.', dot + 1) != std::string_view::npos)
    refuse("the token does not have the form ceso-promotion-1.PAYLOAD.SIGNATURE");
  auto decode = [](std::string_view part, const char* name) {
    std::string bytes;
    try {
      bytes = base64_decode(part);
    } catch (const Error&) {
      refuse(std::string("the token's ") + name + " is not base64");
    }
    // One spelling only: no white space, padding as the encoder writes it.
    if (base64_encode(bytes) != part)
      refuse(std::string("the token's ") + name + " is not canonical base64");
    return bytes;
  };
  return {decode(rest.substr(0, dot), "payload"), decode(rest.substr(dot + 1), "signature")};
}

}  // namespace

const std::vector<std::string>& promotion_verbs() {
  static const std::vector<std::string> kVerbs = {"backup",  "clone", "mkvm", "power",
                                                  "restore", "rm",    "set",  "snap"};
  return kVerbs;
}

// ------------------------------------------------------------------ keys

PromotionKey PromotionKey::generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!k) fail("cannot generate an Ed25519 key (OpenSSL)");
  PromotionKey key;
  key.key_ = own(k);
  key.private_ = true;
  return key;
}

PromotionKey PromotionKey::load_private(const std::string& path) {
  constexpr std::string_view what = "private key";
  struct stat st {};
  std::string pem = read_pem(path, what, &st);
  if (!S_ISREG(st.st_mode))
    throw Error(std::string(what) + ": " + quote(path) + " is not a regular file", Exit::policy);
  if ((st.st_mode & 077) != 0)
    throw Error(std::string(what) + ": " + quote(path) + " has mode " + mode_text(st.st_mode) +
                    ", so other users can read or replace it; run: chmod 600 " + quote(path),
                Exit::policy);
  if (st.st_uid != ::geteuid())
    throw Error(std::string(what) + ": " + quote(path) + " belongs to another user", Exit::policy);
  Bio bio = memory_bio(pem);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (!k)
    bad_input(std::string(what) + ": " + quote(path) +
              " is not a PEM private key (make one with ceso-audit keygen)");
  PromotionKey key;
  key.key_ = own(k);
  key.private_ = true;
  check_ed25519(k, path, what);
  return key;
}

PromotionKey PromotionKey::load_public(const std::string& path, std::string_view what) {
  struct stat st {};
  std::string pem = read_pem(path, what, &st);
  if ((st.st_mode & 022) != 0)
    throw Error(std::string(what) + ": " + quote(path) + " has mode " + mode_text(st.st_mode) +
                    ", so others could replace it with a key of their own; run: chmod go-w " +
                    quote(path),
                Exit::policy);
  Bio bio = memory_bio(pem);
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (!k)
    bad_input(std::string(what) + ": " + quote(path) +
              " is not a PEM public key (\"BEGIN PUBLIC KEY\")");
  PromotionKey key;
  key.key_ = own(k);
  check_ed25519(k, path, what);
  return key;
}

std::string PromotionKey::private_pem() const {
  Bio bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!private_ ||
      !PEM_write_bio_PrivateKey(bio.get(), pkey(key_), nullptr, nullptr, 0, nullptr, nullptr))
    fail("cannot write the private key as PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string PromotionKey::public_pem() const {
  Bio bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!PEM_write_bio_PUBKEY(bio.get(), pkey(key_))) fail("cannot write the public key as PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string PromotionKey::id() const {
  unsigned char raw[32];
  size_t len = sizeof raw;
  if (!EVP_PKEY_get_raw_public_key(pkey(key_), raw, &len) || len != sizeof raw)
    fail("cannot read the Ed25519 public key");
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(raw), len));
}

std::string PromotionKey::sign(std::string_view message) const {
  if (!private_) fail("signing needs the private key");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char sig[64];
  size_t len = sizeof sig;
  // Ed25519 signs the message itself: no digest is named.
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey(key_)) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1 ||
      len != sizeof sig)
    fail("cannot sign (OpenSSL)");
  return std::string(reinterpret_cast<const char*>(sig), len);
}

bool PromotionKey::verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey(key_)) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

// ---------------------------------------------------------------- tokens

std::vector<PromotionGrant> parse_promotion_allow(std::string_view text, std::string_view what) {
  auto bad = [&](const std::string& why) {
    usage_error(std::string(what) + ": " + quote(text) + ": " + why +
                " (expected VERB[,VERB…]:GLOB, e.g. 'power,snap:web*'; verbs: " +
                join(promotion_verbs(), ", ") + ")");
  };
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) bad("no VM glob: name the VMs, or '*' for every VM");
  std::string_view glob = text.substr(colon + 1);
  if (glob.empty()) bad("the VM glob is empty");
  if (glob.find_first_of(":,") != std::string_view::npos) bad("the VM glob holds ':' or ','");
  if (glob.size() > kMaxText || !printable_ascii(glob)) bad("the VM glob is not printable ASCII");
  std::vector<PromotionGrant> out;
  std::string_view verbs = text.substr(0, colon);
  size_t start = 0;
  for (;;) {
    size_t comma = verbs.find(',', start);
    std::string verb(verbs.substr(start, comma == std::string_view::npos ? comma : comma - start));
    const auto& known = promotion_verbs();
    if (verb.empty()) bad("an empty verb");
    if (std::find(known.begin(), known.end(), verb) == known.end())
      bad("unknown verb " + quote(verb));
    PromotionGrant g{verb, std::string(glob)};
    if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string new_promotion_id() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) fail("cannot get random bytes (OpenSSL RAND_bytes)");
  return hex_encode(raw, sizeof raw);
}

std::string promotion_payload(const PromotionClaims& claims) {
  return canonical(claims_json(claims));
}

std::string sign_promotion(const PromotionClaims& claims, const PromotionKey& key) {
  check_claims(claims, [](const std::string& why) { usage_error("promotion: " + why); });
  if (claims.key != key.id()) usage_error("promotion: field 'key' is not the signing key's id");
  std::string payload = promotion_payload(claims);
  std::string sig = key.sign(std::string(kSignedPrefix) + payload);
  return std::string(kPromotionPrefix) + base64_encode(payload) + "." + base64_encode(sig) + "\n";
}

PromotionClaims verify_promotion(std::string_view token, const PromotionKey& key) {
  auto [payload, sig] = split_token(token);
  // 1. The signature, before anything in the payload is looked at. The
  //    algorithm is Ed25519 because the key is (load_public checks it).
  if (!key.verify(std::string(kSignedPrefix) + payload, sig))
    refuse(
        "its signature does not verify with the operator's public key (tampered, or signed "
        "by another key)");
  // 2. Signed, so it came from the operator; still, one spelling only.
  Json j = Json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) refuse("its payload is not a JSON object");
  if (canonical(j) != payload) refuse("its payload is not in canonical form");
  // 3. The version, then no field this version does not know.
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer()) refuse("it has no version field 'v'");
  if (v->get<int64_t>() != kPromotionVersion)
    refuse("version " + v->dump() + " is not supported (this ceso reads " +
           std::to_string(kPromotionVersion) + ")");
  static const char* const kFields[] = {"allow",  "endpoint",   "expires", "id",
                                        "issued", "issuer",     "key",     "max_uses",
                                        "reason", "not_before", "v"};
  for (const auto& item : j.items()) {
    const std::string& name = item.key();
    if (std::find_if(std::begin(kFields), std::end(kFields),
                     [&](const char* f) { return name == f; }) == std::end(kFields))
      refuse("unknown field " + quote(name) + " (version 1 has " +
             "allow, endpoint, expires, id, issued, issuer, key, max_uses, not_before, reason, v)");
  }
  // 4. Types, then the values.
  PromotionClaims c;
  auto text = [&](const char* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) refuse("field " + quote(name) + " is not a string");
    return it->get<std::string>();
  };
  auto integer = [&](const char* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer())
      refuse("field " + quote(name) + " is not an integer");
    return it->get<int64_t>();
  };
  c.id = text("id");
  c.issued = integer("issued");
  c.not_before = integer("not_before");
  c.expires = integer("expires");
  c.endpoint = text("endpoint");
  c.reason = text("reason");
  c.issuer = text("issuer");
  c.key = text("key");
  if (j.contains("max_uses")) c.max_uses = integer("max_uses");
  auto allow = j.find("allow");
  if (allow == j.end() || !allow->is_array()) refuse("field 'allow' is not a list");
  for (const auto& g : *allow) {
    if (!g.is_object() || g.size() != 2 || !g.contains("verb") || !g.contains("vm") ||
        !g["verb"].is_string() || !g["vm"].is_string())
      refuse("an entry of 'allow' is not {\"verb\":…,\"vm\":…}");
    c.allow.push_back({g["verb"].get<std::string>(), g["vm"].get<std::string>()});
  }
  check_claims(c, [](const std::string& why) { refuse(why); });
  if (c.key != key.id()) refuse("it names another signing key than the one that verified it");
  return c;
}

std::string promotion_time_problem(const PromotionClaims& c, int64_t now, int64_t skew) {
  if (now + skew < c.not_before) return "it is not valid before " + format_utc(c.not_before);
  if (now - skew >= c.expires) return "it expired at " + format_utc(c.expires);
  return {};
}

std::vector<std::string> parse_revocations(std::string_view text, const std::string& path) {
  std::vector<std::string> ids;
  size_t number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    std::string_view line =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? text.size() : end + 1;
    ++number;
    size_t hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);
    size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) continue;
    line = line.substr(b);
    std::string_view word = line.substr(0, line.find_first_of(" \t\r"));
    if (!is_hex_id(word))
      bad_input("revocation file " + quote(path) + ", line " + std::to_string(number) + ": " +
                quote(printable(word)) + " is not a promotion id (32 lower-case hex digits)");
    ids.emplace_back(word);
  }
  return ids;
}

std::string unverified_promotion_id(std::string_view token) {
  try {
    auto parts = split_token(token);
    Json j = Json::parse(parts.first, nullptr, false);
    if (j.is_object() && j.contains("id") && j["id"].is_string() &&
        is_hex_id(j["id"].get<std::string>()))
      return j["id"].get<std::string>();
  } catch (const Error&) {
  }
  bad_input("no promotion id found in the token");
}

bool promotion_endpoint_matches(std::string_view promoted, std::string_view endpoint) {
  auto p = split_endpoint(promoted);
  auto e = split_endpoint(endpoint);
  if (!p || !e) return false;
  if (p->first != e->first) return false;
  return p->second == 0 || p->second == e->second;
}

std::string describe_grants(const std::vector<PromotionGrant>& allow) {
  std::vector<std::string> parts;
  for (const auto& g : allow) parts.push_back(g.verb + " on " + quote(g.vm));
  return join(parts, ", ");
}

}  // namespace ceso
