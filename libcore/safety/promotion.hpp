// Promotions: what lets a process in restricted mode (CESO_MODE=restricted,
// an AI agent) make some changes for a while (docs/audit.md "Promotions").
//
// An operator holds an Ed25519 private key; the agent's machine holds only
// the public key (config `promotion: key:`). `ceso-audit promote` signs a
// token; the restricted process presents it with --promotion FILE or
// CESO_PROMOTION=FILE, and the Gate (policy.hpp) lets through exactly the
// changes it covers.
//
// Token file (one line of text):
//
//   ceso-promotion-1.<base64 payload>.<base64 signature>
//
// The signature is Ed25519 (the only algorithm; nothing in the token names
// one) over "ceso-promotion-1\n" followed by the payload bytes. The payload
// is canonical JSON: keys sorted, no white space, ASCII only (other
// characters as \u escapes), integers as integers:
//
//   {"allow":[{"verb":"power","vm":"web*"}],"endpoint":"esxi1.lab","expires":1796270400,
//    "id":"<32 hex>","issued":1796268600,"issuer":"ops@admin1","key":"<64 hex>",
//    "max_uses":3,"not_before":1796268600,"reason":"reboot web tier","v":1}
//
// Verification order: envelope shape, signature, canonical form, version,
// unknown fields, each field's type and range (lifetime capped), then per
// change: time window (±skew), revocation, endpoint, VM, verb and VM glob,
// uses so far (counted from the audit log by the Gate).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ceso {

inline constexpr int kPromotionVersion = 1;
inline constexpr std::string_view kPromotionPrefix = "ceso-promotion-1.";
// The longest a promotion may be valid (expires - not_before): 24 h.
inline constexpr int64_t kPromotionMaxLifetime = 24 * 3600;
// Clock skew allowed between the operator's machine and the agent's.
inline constexpr int64_t kPromotionSkew = 60;
// A token file is one short line; anything bigger is not one.
inline constexpr size_t kPromotionMaxBytes = 16 * 1024;

// The verbs a promotion may allow: the tools that change hosts, named
// without "ceso-".
const std::vector<std::string>& promotion_verbs();

// An Ed25519 key: the operator's private key, or its public half.
class PromotionKey {
 public:
  static PromotionKey generate();
  // PEM (PKCS#8, as `openssl genpkey -algorithm ed25519` writes it). The
  // file must be a regular file of this user that group and others cannot
  // read or write (0600 or 0400), else Error(policy) naming the mode. Any
  // other key type than Ed25519 is refused (Error(bad_input)).
  static PromotionKey load_private(const std::string& path);
  // PEM SubjectPublicKeyInfo ("BEGIN PUBLIC KEY", `openssl pkey -pubout`).
  // Refused (Error(policy)) when group or others may write it: whoever can
  // replace it can sign promotions. `what` names it in messages.
  static PromotionKey load_public(const std::string& path, std::string_view what);

  bool has_private() const { return private_; }
  std::string private_pem() const;
  std::string public_pem() const;
  // SHA-256 of the raw 32-byte public key, hex: names the key in tokens.
  std::string id() const;
  // 64 bytes. Throws when there is no private key.
  std::string sign(std::string_view message) const;
  bool verify(std::string_view message, std::string_view signature) const;

 private:
  std::shared_ptr<void> key_;  // EVP_PKEY
  bool private_ = false;
};

struct PromotionGrant {
  std::string verb;  // "power"
  std::string vm;    // shell glob (fnmatch) on the VM's name
  bool operator==(const PromotionGrant&) const = default;
};

struct PromotionClaims {
  int version = kPromotionVersion;
  std::string id;                                   // 32 lower-case hex digits, random
  int64_t issued = 0, not_before = 0, expires = 0;  // Unix seconds
  std::string endpoint;  // "host" (any port) or "host:port" as endpoint ids write it
  std::vector<PromotionGrant> allow;
  std::optional<int64_t> max_uses;
  std::string reason;
  std::string issuer;  // "user@host" that signed it
  std::string key;     // PromotionKey::id() of the signing key
};

// "power,snap:web*" → power and snap on VMs matching web*. The verbs are
// comma-separated and must be promotion_verbs(); the glob is required ("*"
// for every VM) and may not contain ':' or ','. Throws Error(usage) naming
// `what`.
std::vector<PromotionGrant> parse_promotion_allow(std::string_view text, std::string_view what);

// A new random id (RAND_bytes).
std::string new_promotion_id();

// The canonical payload bytes of `claims` (see the top of this file).
std::string promotion_payload(const PromotionClaims& claims);

// The token text (with its newline) for `claims`, signed by `key`. Checks
// the claims as verification would (lifetime, fields) and throws
// Error(usage) for a claim no verifier would accept.
std::string sign_promotion(const PromotionClaims& claims, const PromotionKey& key);

// Verifies `token` (a token file's content) with `key` in the order at the
// top of this file, up to and including the field checks; time, revocation
// and scope are the caller's (promotion_time_problem, the Gate). Throws
// Error(policy) whose message says what is wrong ("the signature does not
// verify with …", "unknown field 'x'", …).
PromotionClaims verify_promotion(std::string_view token, const PromotionKey& key);

// Why the promotion is not valid at `now` with `skew` seconds of tolerance:
// "it expired at …", "it is not valid before …"; empty when it is.
std::string promotion_time_problem(const PromotionClaims& claims, int64_t now,
                                   int64_t skew = kPromotionSkew);

// The token ids listed in a revocation file's text: one per line, as the
// first word; '#' starts a comment. A line whose first word is no token id
// throws Error(bad_input) naming `path` and the line (a damaged list must
// not let a revoked token through).
std::vector<std::string> parse_revocations(std::string_view text, const std::string& path);

// The id a token's payload claims, without verifying anything (for
// `ceso-audit revoke FILE`: revoking only takes rights away). Throws
// Error(bad_input) when there is none.
std::string unverified_promotion_id(std::string_view token);

// Whether `endpoint` (an endpoint id, "host:port" or "[v6]:port") is the
// one a promotion's endpoint names: the same host, and the same port when
// the promotion gives one. Host names compare case-insensitively.
bool promotion_endpoint_matches(std::string_view promoted, std::string_view endpoint);

// "power on 'web*', snap on 'web*'"
std::string describe_grants(const std::vector<PromotionGrant>& allow);

}  // namespace ceso
