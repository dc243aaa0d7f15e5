// The SigV4 signer (transport/sigv4) against AWS's published test suite
// (tests/unit/data/sigv4, README there names the source) and against
// botocore as an independent signer (tests/s3/botocore_sign.py).
#include "transport/sigv4.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/util.hpp"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string data(const std::string& name) {
  return slurp(std::string(CESO_TEST_DATA) + "/sigv4/" + name);
}

std::string pct_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() + 0 && ceso::hex_value(s[i + 1]) >= 0 &&
        ceso::hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(ceso::hex_value(s[i + 1]) * 16 + ceso::hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A suite .req file: "METHOD TARGET HTTP/1.1", header lines "Name:value",
// a blank line, the body.
ceso::SigV4Request parse_req(const std::string& text) {
  ceso::SigV4Request r;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  r.method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string path = target.substr(0, target.find('?'));
  r.path = pct_decode(path);
  if (target.find('?') != std::string::npos) {
    std::string q = target.substr(target.find('?') + 1);
    std::istringstream qs(q);
    std::string pair;
    while (std::getline(qs, pair, '&')) {
      size_t eq = pair.find('=');
      r.query.emplace_back(pct_decode(pair.substr(0, eq)),
                           eq == std::string::npos ? "" : pct_decode(pair.substr(eq + 1)));
    }
  }
  while (std::getline(in, line) && !line.empty()) {
    size_t colon = line.find(':');
    r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  std::string body;
  std::getline(in, body, '\0');
  r.payload_sha256 = ceso::sha256_hex(body);
  return r;
}

const ceso::SigV4Credentials kSuiteCreds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                         ""};

void check_vector(const std::string& name, ceso::SigV4Credentials creds = kSuiteCreds) {
  SCOPED_TRACE(name);
  auto req = parse_req(data(name + ".req"));
  if (!creds.session_token.empty())
    req.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
  auto s = ceso::sigv4_sign(req, creds, "us-east-1", "service", "20150830T123600Z");
  EXPECT_EQ(s.canonical_request, data(name + ".creq"));
  EXPECT_EQ(s.string_to_sign, data(name + ".sts"));
  EXPECT_EQ(s.authorization, data(name + ".authz"));
}

TEST(SigV4, AwsTestSuite) {
  for (const char* name : {"get-vanilla-query-order-key-case", "get-vanilla-empty-query-key",
                           "get-unreserved", "get-utf8", "get-vanilla-utf8-query",
                           "get-header-value-trim", "post-x-www-form-urlencoded"})
    check_vector(name);
}

TEST(SigV4, AwsTestSuiteSessionToken) {
  auto creds = kSuiteCreds;
  creds.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
  check_vector("get-vanilla-with-session-token", creds);
}

TEST(SigV4, AWrongSecretChangesTheSignature) {
  auto req = parse_req(data("get-vanilla-query-order-key-case.req"));
  auto creds = kSuiteCreds;
  creds.secret_key.back() = 'X';
  auto s = ceso::sigv4_sign(req, creds, "us-east-1", "service", "20150830T123600Z");
  EXPECT_EQ(s.canonical_request, data("get-vanilla-query-order-key-case.creq"));
  EXPECT_NE(s.authorization, data("get-vanilla-query-order-key-case.authz"));
}

TEST(SigV4, UriEncoding) {
  EXPECT_EQ(ceso::sigv4_uri_encode("a b/c+d=é~", true), "a%20b/c%2Bd%3D%C3%A9~");
  EXPECT_EQ(ceso::sigv4_uri_encode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(ceso::sigv4_canonical_query({{"uploads", ""}, {"prefix", "bk/"}, {"list-type", "2"}}),
            "list-type=2&prefix=bk%2F&uploads=");
  EXPECT_EQ(ceso::sigv4_amz_date(1440938160), "20150830T123600Z");
}

// botocore signs the same S3 requests: ours must give the same canonical
// request and Authorization header.
std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string pairs_json(const std::vector<std::pair<std::string, std::string>>& v) {
  std::string out = "[";
  for (const auto& [a, b] : v) {
    if (out.size() > 1) out += ",";
    out += "[" + json_str(a) + "," + json_str(b) + "]";
  }
  return out + "]";
}

std::string botocore(const ceso::SigV4Request& req, const std::string& body,
                     const ceso::SigV4Credentials& c, const std::string& date) {
  std::string script = std::string(CESO_TEST_DATA) + "/../../s3/botocore_sign.py";
  std::string spec =
      "{\"method\":" + json_str(req.method) +
      ",\"endpoint\":\"http://127.0.0.1:9000\",\"path\":" + json_str(req.path) +
      ",\"query\":" + pairs_json(req.query) + ",\"headers\":" + pairs_json(req.headers) +
      ",\"body_hex\":" +
      json_str(ceso::hex_encode(reinterpret_cast<const unsigned char*>(body.data()), body.size())) +
      ",\"region\":\"eu-central-1\",\"access_key\":" + json_str(c.access_key) +
      ",\"secret_key\":" + json_str(c.secret_key) + ",\"token\":" + json_str(c.session_token) +
      ",\"amz_date\":" + json_str(date) + "}";
  std::string in = testing::TempDir() + "/botocore_spec.json";
  std::ofstream(in) << spec;
  FILE* p = popen(("python3 '" + script + "' < '" + in + "'").c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << "botocore_sign.py failed (is python3-botocore installed?)";
  return out;
}

TEST(SigV4, SameAsBotocoreForS3Requests) {
  const std::string date = "20261203T010203Z";
  struct Case {
    std::string method, path;
    std::vector<std::pair<std::string, std::string>> query, headers;
    std::string body;
    std::string token;
  };
  std::vector<Case> cases = {
      {"GET",
       "/ceso-test",
       {{"list-type", "2"}, {"prefix", "bk/x y/"}, {"delimiter", "/"}},
       {},
       "",
       ""},
      {"POST", "/ceso-test/bk/web 01 & é/disk-flat.vmdk.zst", {{"uploads", ""}}, {}, "", ""},
      {"PUT",
       "/ceso-test/bk/a+b=c~d/f",
       {{"partNumber", "3"}, {"uploadId", "2~Zk/a+b=="}},
       {{"Content-MD5", "XUFAKrxLKna5cZ2REBfFkg=="}},
       "hello\n",
       ""},
      {"PUT",
       "/ceso-test/bk/id/manifest.json",
       {},
       {{"x-amz-copy-source", "/ceso-test/bk/id/manifest.json.tmp"}, {"If-None-Match", "*"}},
       "",
       "FwoGZXIvYXdzE//token=="},
      {"GET",
       "/ceso-test/bk/id/f",
       {},
       {{"Range", "bytes=0-8388607"}, {"If-Match", "\"abc\""}},
       "",
       ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method + " " + c.path);
    ceso::SigV4Credentials creds{"AKIAEXAMPLE123", "s3cr3t/Key+With=Signs", c.token};
    ceso::SigV4Request req{c.method, c.path, c.query, c.headers, ceso::sha256_hex(c.body)};
    req.headers.emplace_back("Host", "127.0.0.1:9000");
    req.headers.emplace_back("X-Amz-Content-SHA256", req.payload_sha256);
    std::string theirs = botocore(req, c.body, creds, date);
    // botocore adds X-Amz-Date and the token itself.
    req.headers.emplace_back("X-Amz-Date", date);
    if (!c.token.empty()) req.headers.emplace_back("X-Amz-Security-Token", c.token);
    auto s = ceso::sigv4_sign(req, creds, "eu-central-1", "s3", date);
    EXPECT_EQ(s.canonical_request + "\n----\n" + s.authorization + "\n", theirs);
  }
}

}  // namespace
