#include "base/process.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "base/error.hpp"

namespace {

using Words = std::vector<std::string>;

Words split(const std::string& text) {
  std::string why;
  auto w = ceso::split_command(text, &why);
  EXPECT_TRUE(w.has_value()) << text << ": " << why;
  return w.value_or(Words{});
}

std::string split_error(const std::string& text) {
  std::string why;
  auto w = ceso::split_command(text, &why);
  EXPECT_FALSE(w.has_value()) << text;
  return why;
}

TEST(SplitCommand, WordsQuotesAndBackslashes) {
  EXPECT_EQ(split("pass show lab/esxi1"), (Words{"pass", "show", "lab/esxi1"}));
  EXPECT_EQ(split("  a \t b\n c  "), (Words{"a", "b", "c"}));
  EXPECT_EQ(split("secret-tool lookup service 'ceso esxi1'"),
            (Words{"secret-tool", "lookup", "service", "ceso esxi1"}));
  EXPECT_EQ(split(R"(gpg -d "$HOME/pw file.gpg")"), (Words{"gpg", "-d", "$HOME/pw file.gpg"}));
  EXPECT_EQ(split(R"(a'b'"c"d)"), (Words{"abcd"}));
  EXPECT_EQ(split("a '' b"), (Words{"a", "", "b"}));
  EXPECT_EQ(split(R"(a "")"), (Words{"a", ""}));
  EXPECT_EQ(split(R"(a\ b c)"), (Words{"a b", "c"}));
  EXPECT_EQ(split(R"(a\'b)"), (Words{"a'b"}));
  EXPECT_EQ(split(R"('a\b' "c\"d" "e\\f" "g\h")"), (Words{R"(a\b)", R"(c"d)", R"(e\f)", R"(g\h)"}));
  EXPECT_EQ(split(R"('a"b' "c'd")"), (Words{R"(a"b)", "c'd"}));
  // Quoted shell syntax is just text.
  EXPECT_EQ(split(R"(printf '%s|x' "a;b" \$HOME)"), (Words{"printf", "%s|x", "a;b", "$HOME"}));
}

TEST(SplitCommand, RefusesUnterminatedQuotesTrailingBackslashAndShellSyntax) {
  EXPECT_NE(split_error("pass show 'lab").find("unterminated single quote"), std::string::npos);
  EXPECT_NE(split_error(R"(gpg -d "x)").find("unterminated double quote"), std::string::npos);
  EXPECT_NE(split_error(R"(gpg -d "x\")").find("unterminated double quote"), std::string::npos);
  EXPECT_NE(split_error(R"(a b\)").find("backslash"), std::string::npos);
  EXPECT_NE(split_error("").find("no command"), std::string::npos);
  EXPECT_NE(split_error(" \t\n").find("no command"), std::string::npos);
  EXPECT_NE(split_error("'' a").find("program name is empty"), std::string::npos);
  for (const char* shell : {"pass show x | head -1", "a; b", "a && b", "a > f", "a < f",
                            "echo $HOME", "echo `id`", "(a)", "a &"})
    EXPECT_NE(split_error(shell).find("without a shell"), std::string::npos) << shell;
}

TEST(ChildEnvironment, PasswordsAreLeftOut) {
  auto env = ceso::without_secrets({"PATH=/bin", "CESO_PASSWORD=s1", "GOVC_PASSWORD=s2",
                                    "CESO_PASSWORD_FILE=/run/pw", "CESO_USER=root",
                                    "CESO_URL=https://root:s3@esxi1/sdk", "GOVC_URL=u:s4@vc",
                                    "CESO_PASSWORD_COMMAND=pass show x", "HOME=/home/me"});
  EXPECT_EQ(env, (Words{"PATH=/bin", "CESO_PASSWORD_FILE=/run/pw", "CESO_USER=root",
                        "CESO_PASSWORD_COMMAND=pass show x", "HOME=/home/me"}));
  // A URL without a password stays: a password command may use it.
  env = ceso::without_secrets(
      {"CESO_URL=https://root@esxi1/sdk", "GOVC_URL=vc.example:443", "CESO_URL_X=a:b@c"});
  EXPECT_EQ(env, (Words{"CESO_URL=https://root@esxi1/sdk", "GOVC_URL=vc.example:443",
                        "CESO_URL_X=a:b@c"}));
  // An empty password is a password too.
  EXPECT_TRUE(ceso::is_secret_variable("CESO_PASSWORD", ""));
  EXPECT_TRUE(ceso::is_secret_variable("GOVC_URL", "user:@vc"));
  EXPECT_TRUE(ceso::is_secret_variable("CESO_URL", "u:p@a@host"));
}

TEST(ChildEnvironment, TheRealChildSeesNoPassword) {
  ::setenv("CESO_PASSWORD", "CesoSecretEnvMarker", 1);
  ::setenv("GOVC_PASSWORD", "GovcSecretEnvMarker", 1);
  ::setenv("CESO_PROCESS_TEST_VISIBLE", "visible", 1);
  std::string out = ceso::run_capture({"env"});
  ::unsetenv("CESO_PASSWORD");
  ::unsetenv("GOVC_PASSWORD");
  ::unsetenv("CESO_PROCESS_TEST_VISIBLE");
  EXPECT_EQ(out.find("SecretEnvMarker"), std::string::npos) << out;
  EXPECT_NE(out.find("CESO_PROCESS_TEST_VISIBLE=visible"), std::string::npos);
}

std::string run_error(const ceso::CaptureOptions& o, Words argv, ceso::Exit* code = nullptr) {
  try {
    ceso::run_capture(argv, o);
  } catch (const ceso::Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << argv[0];
  return {};
}

TEST(RunCapture, ReturnsStandardOutputAndNoShellIsInvolved) {
  EXPECT_EQ(ceso::run_capture({"printf", "%s\\n", "pw $HOME `id` |x"}), "pw $HOME `id` |x\n");
  // Standard input is /dev/null, not ours (ours carries records).
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], "CesoStdinMarker\n", 16), 16);
  ::close(p[1]);
  int saved = ::dup(0);
  ::dup2(p[0], 0);
  ::close(p[0]);
  std::string out = ceso::run_capture({"sh", "-c", "cat; echo end"});
  ::dup2(saved, 0);
  ::close(saved);
  EXPECT_EQ(out, "end\n");
}

TEST(RunCapture, FailuresNameTheProgramNeverTheOutput) {
  ceso::CaptureOptions o;
  ceso::Exit code = ceso::Exit::ok;
  std::string msg = run_error(o, {"sh", "-c", "echo CesoOutputMarker; exit 3"}, &code);
  EXPECT_EQ(code, ceso::Exit::failure);
  EXPECT_NE(msg.find("'sh' exited with status 3"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("CesoOutputMarker"), std::string::npos);
  msg = run_error(o, {"sh", "-c", "kill -9 $$"});
  EXPECT_NE(msg.find("killed by signal 9"), std::string::npos) << msg;
  msg = run_error(o, {"ceso-no-such-program-xyz", "a"}, &code);
  EXPECT_EQ(code, ceso::Exit::failure);
  EXPECT_NE(msg.find("cannot run 'ceso-no-such-program-xyz': no such program"), std::string::npos)
      << msg;
  msg = run_error(o, {"/nonexistent/dir/prog"});
  EXPECT_NE(msg.find("cannot run '/nonexistent/dir/prog'"), std::string::npos) << msg;
}

TEST(RunCapture, TimeoutStopsTheProgram) {
  ceso::CaptureOptions o;
  o.timeout_ms = 300;
  auto start = std::chrono::steady_clock::now();
  std::string msg = run_error(o, {"sleep", "30"});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_NE(msg.find("'sleep' did not finish within 300 ms"), std::string::npos) << msg;
  EXPECT_LT(took, std::chrono::seconds(5));
  // Closing standard output early does not escape the timeout.
  start = std::chrono::steady_clock::now();
  msg = run_error(o, {"sh", "-c", "exec >&-; sleep 30"});
  EXPECT_NE(msg.find("did not finish"), std::string::npos) << msg;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // A program ignoring SIGTERM is killed, and gone when the error comes.
  std::string pid_file =
      std::filesystem::temp_directory_path() / ("ceso-process-test-" + std::to_string(::getpid()));
  start = std::chrono::steady_clock::now();
  msg =
      run_error(o, {"sh", "-c", "echo $$ >'" + pid_file + "'; trap '' TERM; while :; do :; done"});
  EXPECT_NE(msg.find("did not finish"), std::string::npos) << msg;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
  pid_t pid = 0;
  std::ifstream(pid_file) >> pid;
  std::filesystem::remove(pid_file);
  ASSERT_GT(pid, 0);
  bool gone = ::kill(pid, 0) == -1 && errno == ESRCH;
  EXPECT_TRUE(gone) << "the program still exists (running or not reaped)";
  if (!gone) ::kill(pid, SIGKILL);  // leave no busy loop behind
}

TEST(RunCapture, OutputIsCapped) {
  ceso::CaptureOptions o;
  o.max_output = 64 * 1024;
  std::string msg = run_error(o, {"sh", "-c", "yes CesoOutputMarker"});
  EXPECT_NE(msg.find("wrote more than 64 KiB"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("CesoOutputMarker"), std::string::npos);
  // Exactly the cap is fine.
  std::string out = ceso::run_capture({"head", "-c", "65536", "/dev/zero"}, o);
  EXPECT_EQ(out.size(), 65536u);
}

TEST(RunCapture, SignalsCesoIgnoresAreDefaultInTheChild) {
  // ceso ignores SIGPIPE; a child must not inherit that.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old {};
  ::sigaction(SIGPIPE, &ignore, &old);
  std::string out = ceso::run_capture({"sh", "-c", "grep SigIgn /proc/self/status"});
  ::sigaction(SIGPIPE, &old, nullptr);
  // SIGPIPE is signal 13: bit 12 of the mask (0x1000).
  unsigned long long mask = std::stoull(out.substr(out.find(':') + 1), nullptr, 16);
  EXPECT_EQ(mask & 0x1000ULL, 0ULL) << out;
}

}  // namespace
