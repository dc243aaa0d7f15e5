// s3:// target URLs and where their endpoint, region and credentials come
// from (no connection is made here; tests/cli/ceso-backup-s3.bats talks to a
// real S3 server).
#include "transport/s3.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>

#include "base/error.hpp"
#include "test_support.hpp"

namespace {

ceso::Exit code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ceso::Error& e) {
    return e.code();
  }
  return ceso::Exit::ok;
}

ceso::Environment env_of(std::map<std::string, std::string> vars) {
  return [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(S3Url, Parts) {
  auto u = ceso::parse_s3_url("s3://my-bucket/backups/site%20a/");
  EXPECT_EQ(u.bucket, "my-bucket");
  EXPECT_EQ(u.prefix, "backups/site a");
  EXPECT_EQ(ceso::parse_s3_url("S3://bkt").prefix, "");
  EXPECT_EQ(ceso::parse_s3_url("s3://a.b.c/").bucket, "a.b.c");
}

TEST(S3Url, Refused) {
  for (const char* bad : {"s3://", "s3://ab", "s3://My-Bucket/x", "s3://key:secret@bkt/x",
                          "s3://bkt:9000/x", "s3://bkt/a/../b", "s3://bkt/./b", "s3://bkt/a//b",
                          "s3://bkt/x?y", "s3://-bkt/x", "s3://bkt_/x", "s3://bkt/a%0Ab"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(code_of([&] { ceso::parse_s3_url(bad); }), ceso::Exit::usage);
  }
}

TEST(S3Settings, EnvironmentWins) {
  ceso::test::TempDir dir;
  auto env = env_of({{"HOME", dir / ""},

                     {"AWS_ACCESS_KEY_ID", "AKID"},
                     {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                     {"AWS_SESSION_TOKEN", "TOK"},
                     {"AWS_DEFAULT_REGION", "eu-west-1"},
                     {"AWS_ENDPOINT_URL", "http://127.0.0.1:9000"}});
  auto s = ceso::resolve_s3_settings(ceso::parse_s3_url("s3://bkt/p"), env);
  EXPECT_EQ(s.creds.access_key, "AKID");
  EXPECT_EQ(s.creds.secret_key, "SECRET");
  EXPECT_EQ(s.creds.session_token, "TOK");
  EXPECT_EQ(s.region, "eu-west-1");
  EXPECT_EQ(s.endpoint, "http://127.0.0.1:9000");
  EXPECT_TRUE(s.path_style);
  EXPECT_EQ(s.retry_budget_s, 900);
  EXPECT_EQ(s.part_size, 8u << 20);
}

TEST(S3Settings, AwsDefaultEndpointAndCredentialsFile) {
  ceso::test::TempDir dir;
  std::string file = dir / "creds";
  std::ofstream(file) << "# comment\n[default]\naws_access_key_id=D\naws_secret_access_key=DS\n"
                         "[backup]\naws_access_key_id = B\n aws_secret_access_key = BS \n";
  ::chmod(file.c_str(), 0600);
  auto env = env_of({{"HOME", dir / ""},

                     {"AWS_SHARED_CREDENTIALS_FILE", file},
                     {"AWS_PROFILE", "backup"},
                     {"AWS_REGION", "eu-central-1"}});
  auto s = ceso::resolve_s3_settings(ceso::parse_s3_url("s3://bkt/p"), env);
  EXPECT_EQ(s.creds.access_key, "B");
  EXPECT_EQ(s.creds.secret_key, "BS");
  EXPECT_EQ(s.endpoint, "https://bkt.s3.eu-central-1.amazonaws.com");
  EXPECT_FALSE(s.path_style);
  EXPECT_EQ(s.creds_source, file + " [backup]");
  // A bucket with a dot is path-style (a virtual host would break TLS).
  EXPECT_TRUE(ceso::resolve_s3_settings(ceso::parse_s3_url("s3://a.b.c/p"), env).path_style);
  // Group-readable: refused like a password file.
  ::chmod(file.c_str(), 0640);
  EXPECT_EQ(code_of([&] { ceso::resolve_s3_settings(ceso::parse_s3_url("s3://bkt/p"), env); }),
            ceso::Exit::policy);
}

TEST(S3Settings, Refusals) {
  ceso::test::TempDir dir;
  auto base = std::map<std::string, std::string>{{"HOME", dir / ""}};
  auto url = ceso::parse_s3_url("s3://bkt/p");
  // No credentials anywhere.
  EXPECT_EQ(code_of([&] { ceso::resolve_s3_settings(url, env_of(base)); }), ceso::Exit::connection);
  auto with = [&](std::map<std::string, std::string> extra) {
    auto v = base;
    v["AWS_ACCESS_KEY_ID"] = "A";
    v["AWS_SECRET_ACCESS_KEY"] = "S";
    for (auto& [k, val] : extra) v[k] = val;
    return env_of(v);
  };
  EXPECT_EQ(code_of([&] {
              ceso::resolve_s3_settings(url, with({{"AWS_ENDPOINT_URL", "http://s3.example.com"}}));
            }),
            ceso::Exit::policy);
  EXPECT_EQ(code_of([&] {
              ceso::resolve_s3_settings(url, with({{"AWS_ENDPOINT_URL", "https://h/path"}}));
            }),
            ceso::Exit::usage);
  EXPECT_EQ(code_of([&] {
              ceso::resolve_s3_settings(url, with({{"CESO_S3_PART_MIB", "4"}}));
            }),
            ceso::Exit::usage);
  EXPECT_EQ(code_of([&] {
              ceso::resolve_s3_settings(url, with({{"AWS_REGION", "eu/../x"}}));
            }),
            ceso::Exit::usage);
}

}  // namespace
