#include "safety/promotion.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/codec.hpp"
#include "base/error.hpp"
#include "safety/policy.hpp"
#include "test_support.hpp"

namespace {

using ceso::PromotionClaims;
using ceso::PromotionKey;

struct TempDir : ceso::test::TempDir {
  TempDir() : ceso::test::TempDir("ceso-promotion-test") {}
};

void write(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

PromotionClaims sample(const PromotionKey& key, int64_t now = 1796268600) {
  PromotionClaims c;
  c.id = "0123456789abcdef0123456789abcdef";
  c.issued = now;
  c.not_before = now;
  c.expires = now + 1800;
  c.endpoint = "esxi1.lab";
  c.allow = {{"power", "web*"}, {"snap", "web*"}};
  c.max_uses = 3;
  c.reason = "INC-42: reboot the web tier";
  c.issuer = "ops@admin1";
  c.key = key.id();
  return c;
}

// A token over any payload bytes, signed with `key`: the signed form is
// documented (promotion.hpp), so a test can make tokens a buggy or hostile
// issuer would.
std::string token_over(const std::string& payload, const PromotionKey& key) {
  std::string sig = key.sign("ceso-promotion-1\n" + payload);
  return "ceso-promotion-1." + ceso::base64_encode(payload) + "." + ceso::base64_encode(sig);
}

// The policy error's message, or "" when it did not throw.
std::string refusal(const std::string& token, const PromotionKey& key) {
  try {
    ceso::verify_promotion(token, key);
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::policy) << e.what();
    return e.what();
  }
  return {};
}

TEST(Promotion, CanonicalPayloadIsSortedCompactAscii) {
  PromotionKey key = PromotionKey::generate();
  PromotionClaims c = sample(key);
  c.reason = "caf\xc3\xa9 \"x\"";
  EXPECT_EQ(
      ceso::promotion_payload(c),
      R"({"allow":[{"verb":"power","vm":"web*"},{"verb":"snap","vm":"web*"}],)"
      R"("endpoint":"esxi1.lab","expires":1796270400,"id":"0123456789abcdef0123456789abcdef",)"
      R"("issued":1796268600,"issuer":"ops@admin1","key":")" +
          key.id() + R"(","max_uses":3,"not_before":1796268600,"reason":"caf\u00e9 \"x\"","v":1})");
  c.max_uses.reset();  // absent, not null
  EXPECT_EQ(ceso::promotion_payload(c).find("max_uses"), std::string::npos);
}

TEST(Promotion, SignedTokenVerifies) {
  PromotionKey key = PromotionKey::generate();
  PromotionClaims c = sample(key);
  std::string token = ceso::sign_promotion(c, key);
  EXPECT_EQ(token.rfind("ceso-promotion-1.", 0), 0u);
  EXPECT_EQ(token.back(), '\n');
  PromotionClaims back = ceso::verify_promotion(token, key);
  EXPECT_EQ(back.id, c.id);
  EXPECT_EQ(back.allow, c.allow);
  EXPECT_EQ(back.max_uses, c.max_uses);
  EXPECT_EQ(back.expires, c.expires);
  EXPECT_EQ(ceso::unverified_promotion_id(token), c.id);
}

TEST(Promotion, TamperedPayloadFailsTheSignature) {
  PromotionKey key = PromotionKey::generate();
  std::string payload = ceso::promotion_payload(sample(key));
  std::string token = ceso::sign_promotion(sample(key), key);
  std::string sig = token.substr(token.rfind('.') + 1);
  std::string widened = payload;
  widened.replace(widened.find("web*"), 4, "*");  // power on every VM
  std::string tampered = "ceso-promotion-1." + ceso::base64_encode(widened) + "." + sig;
  EXPECT_NE(refusal(tampered, key).find("signature does not verify"), std::string::npos);
  // A flipped bit in the signature too.
  std::string flipped = token;
  flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_NE(refusal(flipped, key).find("signature"), std::string::npos);
}

TEST(Promotion, ForgedWithAnotherKeyIsRefused) {
  PromotionKey operator_key = PromotionKey::generate();
  PromotionKey agent_key = PromotionKey::generate();
  PromotionClaims c = sample(agent_key);
  std::string forged = ceso::sign_promotion(c, agent_key);
  EXPECT_NE(refusal(forged, operator_key).find("signature does not verify"), std::string::npos);
}

TEST(Promotion, SignatureIsCheckedBeforeTheContent) {
  PromotionKey key = PromotionKey::generate();
  PromotionKey other = PromotionKey::generate();
  // Garbage and unknown versions signed by another key: the signature is
  // what is reported, nothing in the payload is read.
  EXPECT_NE(refusal(token_over("not json", other), key).find("signature"), std::string::npos);
  EXPECT_NE(refusal(token_over(R"({"v":99})", other), key).find("signature"), std::string::npos);
}

TEST(Promotion, EnvelopeShape) {
  PromotionKey key = PromotionKey::generate();
  std::string token = ceso::sign_promotion(sample(key), key);
  EXPECT_NE(refusal("eyJhbGciOiJub25lIn0.e30.", key).find("not a ceso promotion token"),
            std::string::npos);
  EXPECT_NE(refusal("ceso-promotion-1.abc", key).find("form"), std::string::npos);
  EXPECT_NE(refusal(token.substr(0, token.size() - 1) + ".AAAA", key).find("form"),
            std::string::npos);
  // Base64 with white space inside is another spelling: refused.
  std::string spaced = token;
  spaced.insert(30, "\n");
  EXPECT_NE(refusal(spaced, key).find("canonical base64"), std::string::npos);
  EXPECT_NE(refusal(std::string(20000, 'A'), key).find("larger"), std::string::npos);
}

TEST(Promotion, SignedButNotCanonicalIsRefused) {
  PromotionKey key = PromotionKey::generate();
  std::string payload = ceso::promotion_payload(sample(key));
  std::string spaced = payload;
  spaced.insert(1, " ");
  EXPECT_NE(refusal(token_over(spaced, key), key).find("canonical"), std::string::npos);
}

TEST(Promotion, VersionAndUnknownFields) {
  PromotionKey key = PromotionKey::generate();
  auto j = nlohmann::json::parse(ceso::promotion_payload(sample(key)));
  auto signed_json = [&](const nlohmann::json& v) {
    return token_over(v.dump(-1, ' ', true), key);
  };
  auto v2 = j;
  v2["v"] = 2;
  EXPECT_NE(refusal(signed_json(v2), key).find("version 2 is not supported"), std::string::npos);
  auto nov = j;
  nov.erase("v");
  EXPECT_NE(refusal(signed_json(nov), key).find("no version field"), std::string::npos);
  auto extra = j;
  extra["alg"] = "none";
  EXPECT_NE(refusal(signed_json(extra), key).find("unknown field 'alg'"), std::string::npos);
  auto bad_allow = j;
  bad_allow["allow"] = nlohmann::json::array({{{"verb", "power"}, {"vm", "*"}, {"x", 1}}});
  EXPECT_NE(refusal(signed_json(bad_allow), key).find("entry of 'allow'"), std::string::npos);
  auto bad_verb = j;
  bad_verb["allow"] = nlohmann::json::array({{{"verb", "shell"}, {"vm", "*"}}});
  EXPECT_NE(refusal(signed_json(bad_verb), key).find("verb 'shell'"), std::string::npos);
  auto string_time = j;
  string_time["expires"] = "2026-12-03T00:00:00Z";
  EXPECT_NE(refusal(signed_json(string_time), key).find("'expires' is not an integer"),
            std::string::npos);
  auto bad_id = j;
  bad_id["id"] = "../x";
  EXPECT_NE(refusal(signed_json(bad_id), key).find("'id'"), std::string::npos);
  auto zero_uses = j;
  zero_uses["max_uses"] = 0;
  EXPECT_NE(refusal(signed_json(zero_uses), key).find("max_uses"), std::string::npos);
}

TEST(Promotion, LifetimeIsCapped) {
  PromotionKey key = PromotionKey::generate();
  PromotionClaims c = sample(key);
  c.expires = c.not_before + ceso::kPromotionMaxLifetime + 1;
  EXPECT_THROW(ceso::sign_promotion(c, key), ceso::Error);
  auto j = nlohmann::json::parse(ceso::promotion_payload(c));
  EXPECT_NE(refusal(token_over(j.dump(-1, ' ', true), key), key).find("cap"), std::string::npos);
  c.expires = c.not_before;
  j = nlohmann::json::parse(ceso::promotion_payload(c));
  EXPECT_NE(refusal(token_over(j.dump(-1, ' ', true), key), key).find("expires before"),
            std::string::npos);
}

TEST(Promotion, TimeWindowWithSkew) {
  PromotionKey key = PromotionKey::generate();
  PromotionClaims c = sample(key, 1000000);  // valid [1000000, 1001800)
  EXPECT_EQ(ceso::promotion_time_problem(c, 1000000), "");
  EXPECT_EQ(ceso::promotion_time_problem(c, 1000000 - 60), "");  // clock 60 s behind
  EXPECT_NE(ceso::promotion_time_problem(c, 1000000 - 61).find("not valid before"),
            std::string::npos);
  EXPECT_EQ(ceso::promotion_time_problem(c, 1001800 + 59), "");
  EXPECT_NE(ceso::promotion_time_problem(c, 1001800 + 60).find("expired at"), std::string::npos);
  EXPECT_NE(ceso::promotion_time_problem(c, 1001800, 0).find("expired"), std::string::npos);
}

TEST(Promotion, AllowSyntax) {
  auto g = ceso::parse_promotion_allow("power,snap:web*", "--allow");
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0], (ceso::PromotionGrant{"power", "web*"}));
  EXPECT_EQ(g[1], (ceso::PromotionGrant{"snap", "web*"}));
  for (const char* bad : {"power", "power:", ":web*", "power,:web*", "shell:web*", "power:a:b",
                          "power:a,b", "power:\x01"}) {
    try {
      ceso::parse_promotion_allow(bad, "--allow");
      ADD_FAILURE() << bad;
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::usage) << bad;
      EXPECT_NE(std::string(e.what()).find("--allow"), std::string::npos);
    }
  }
}

TEST(Promotion, EndpointMatching) {
  EXPECT_TRUE(ceso::promotion_endpoint_matches("esxi1.lab", "esxi1.lab:443"));
  EXPECT_TRUE(ceso::promotion_endpoint_matches("ESXi1.Lab", "esxi1.lab:8443"));
  EXPECT_TRUE(ceso::promotion_endpoint_matches("127.0.0.1:8989", "127.0.0.1:8989"));
  EXPECT_FALSE(ceso::promotion_endpoint_matches("127.0.0.1:8989", "127.0.0.1:8990"));
  EXPECT_FALSE(ceso::promotion_endpoint_matches("esxi1.lab", "esxi1.lab.evil:443"));
  EXPECT_FALSE(ceso::promotion_endpoint_matches("esxi1", "esxi1.lab:443"));
  EXPECT_TRUE(ceso::promotion_endpoint_matches("[2001:db8::1]", "[2001:db8::1]:443"));
  EXPECT_TRUE(ceso::promotion_endpoint_matches("2001:db8::1", "[2001:db8::1]:443"));
  EXPECT_FALSE(ceso::promotion_endpoint_matches("", "esxi1:443"));
  EXPECT_FALSE(ceso::promotion_endpoint_matches("esxi1", ""));
}

TEST(Promotion, Revocations) {
  auto ids = ceso::parse_revocations(
      "# revoked\n0123456789abcdef0123456789abcdef  2026-12-03T00:00:00Z  done\n\n"
      "  fedcba9876543210fedcba9876543210\n",
      "rev");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[1], "fedcba9876543210fedcba9876543210");
  try {
    ceso::parse_revocations("0123456789abcdef0123456789abcdef\nnot-an-id\n", "rev");
    ADD_FAILURE();
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos);
  }
}

TEST(PromotionKeyFiles, PrivateKeyModeAndType) {
  TempDir dir;
  PromotionKey key = PromotionKey::generate();
  write(dir / "op.key", key.private_pem(), 0644);
  try {
    PromotionKey::load_private(dir / "op.key");
    ADD_FAILURE();
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::policy);
    EXPECT_NE(std::string(e.what()).find("mode 0644"), std::string::npos);
  }
  ::chmod((dir / "op.key").c_str(), 0600);
  EXPECT_EQ(PromotionKey::load_private(dir / "op.key").id(), key.id());
  // Another key type is refused: the algorithm is fixed.
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, ec);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  write(dir / "ec.pub", std::string(data, static_cast<size_t>(n)), 0644);
  BIO_free(bio);
  EVP_PKEY_free(ec);
  EXPECT_THROW(PromotionKey::load_public(dir / "ec.pub", "operator key"), ceso::Error);
  write(dir / "op.pub", key.public_pem(), 0664);
  EXPECT_THROW(PromotionKey::load_public(dir / "op.pub", "operator key"), ceso::Error);
  ::chmod((dir / "op.pub").c_str(), 0644);
  EXPECT_EQ(PromotionKey::load_public(dir / "op.pub", "operator key").id(), key.id());
}

// The Gate with a promotion: per-change checks and max_uses from the log.
struct GateFixture {
  TempDir dir;
  PromotionKey key = PromotionKey::generate();
  GateFixture() { write(dir / "op.pub", key.public_pem(), 0644); }
  ceso::GateSettings settings(const PromotionClaims& c) {
    write(dir / "token", ceso::sign_promotion(c, key), 0600);
    ceso::GateSettings s;
    s.tool = "ceso-power";
    s.mode = ceso::Mode::restricted;
    s.audit_log = dir / "audit.log";
    s.correlation_id = "corr";
    s.promotion_file = dir / "token";
    s.promotion_key = dir / "op.pub";
    s.promotion_key_source = "test";
    s.promotion_revoked = dir / "revoked";
    return s;
  }
  static std::string refused(ceso::Gate& gate, const ceso::Mutation& m) {
    try {
      gate.perform(m, [] {});
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::policy);
      return e.what();
    }
    return {};
  }
};

TEST(PromotionGate, CoversOnlyWhatItNames) {
  GateFixture f;
  PromotionClaims c = sample(f.key, ceso::unix_now());
  c.max_uses = 2;
  ceso::Gate gate(f.settings(c));
  ASSERT_TRUE(gate.promotion() && gate.promotion()->claims) << gate.promotion()->problem;
  bool ran = false;
  EXPECT_TRUE(
      gate.perform({"esxi1.lab:443", "web01", "vm-1", "PowerOffVM_Task"}, [&] { ran = true; }));
  EXPECT_TRUE(ran);
  EXPECT_NE(GateFixture::refused(gate, {"esxi1.lab:443", "db01", "vm-2", "PowerOffVM_Task"})
                .find("does not allow power on 'db01'"),
            std::string::npos);
  EXPECT_NE(GateFixture::refused(gate, {"esxi2.lab:443", "web01", "vm-1", "PowerOffVM_Task"})
                .find("is for endpoint 'esxi1.lab'"),
            std::string::npos);
  EXPECT_NE(
      GateFixture::refused(gate, {"esxi1.lab:443", "", "", "RebootHost_Task"}).find("VMs only"),
      std::string::npos);
  EXPECT_TRUE(gate.perform({"esxi1.lab:443", "web02", "vm-3", "PowerOnVM_Task"}, [] {}));
  // Two uses are in the log now; refusals did not count.
  EXPECT_EQ(ceso::count_promotion_uses(f.dir / "audit.log", c.id), 2);
  EXPECT_NE(GateFixture::refused(gate, {"esxi1.lab:443", "web01", "vm-1", "PowerOnVM_Task"})
                .find("used 2 of the 2"),
            std::string::npos);
  // Another tool is another verb.
  ceso::GateSettings s = f.settings(c);
  s.tool = "ceso-rm";
  ceso::Gate rm_gate(s);
  EXPECT_NE(GateFixture::refused(rm_gate, {"esxi1.lab:443", "web01", "vm-1", "Destroy_Task"})
                .find("does not allow rm on 'web01'"),
            std::string::npos);
}

TEST(PromotionGate, RevokedExpiredAndBadTokens) {
  GateFixture f;
  PromotionClaims c = sample(f.key, ceso::unix_now());
  c.max_uses.reset();
  ceso::Mutation m{"esxi1.lab:443", "web01", "vm-1", "PowerOffVM_Task"};
  {
    ceso::Gate gate(f.settings(c));
    write(f.dir / "revoked", c.id + "  2026-12-03T00:00:00Z  done\n", 0644);
    EXPECT_NE(GateFixture::refused(gate, m).find("was revoked"), std::string::npos);
    write(f.dir / "revoked", "garbage\n", 0644);
    EXPECT_NE(GateFixture::refused(gate, m).find("cannot be checked"), std::string::npos);
    ::unlink((f.dir / "revoked").c_str());
    EXPECT_TRUE(gate.perform(m, [] {}));
  }
  {
    PromotionClaims old = c;
    old.not_before -= 7200;
    old.expires = old.not_before + 3600;
    ceso::Gate gate(f.settings(old));
    EXPECT_NE(GateFixture::refused(gate, m).find("expired at"), std::string::npos);
  }
  {
    ceso::GateSettings s = f.settings(c);
    write(f.dir / "token", "ceso-promotion-1.e30=.AAAA\n", 0600);
    ceso::Gate gate(s);
    EXPECT_NE(GateFixture::refused(gate, m).find("is not accepted"), std::string::npos);
  }
}

}  // namespace
