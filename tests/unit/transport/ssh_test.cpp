// transport/ssh: quoting for the host's shell, host key pins, private key
// types (pure functions), and SshConnection against a real OpenSSH sshd on
// 127.0.0.1 (Debian's openssh-server) with its own config, host keys and
// authorized_keys in a temporary directory. Its second and third ports force
// every command through /bin/sh (dash) and BusyBox ash, as ESXi runs them.
#include "transport/ssh.hpp"

#include <gtest/gtest.h>
#include <libssh2.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/cancel.hpp"
#include "base/codec.hpp"
#include "base/error.hpp"
#include "test_support.hpp"

namespace {

using ceso::Error;
using ceso::Exit;
using ceso::SshConnection;
using ceso::SshSettings;

// ---------------------------------------------------------------- quoting

TEST(ShellQuote, EveryArgumentIsSingleQuoted) {
  EXPECT_EQ(ceso::shell_quote("plain"), "'plain'");
  EXPECT_EQ(ceso::shell_quote(""), "''");
  EXPECT_EQ(ceso::shell_quote("a b"), "'a b'");
  EXPECT_EQ(ceso::shell_quote("$HOME `id` $(id) * ? [a] ~ ; | & # !"),
            "'$HOME `id` $(id) * ? [a] ~ ; | & # !'");
  EXPECT_EQ(ceso::shell_quote("\\ \" %s"), "'\\ \" %s'");
  EXPECT_EQ(ceso::shell_quote("é ☃ 🙂"), "'é ☃ 🙂'");
}

TEST(ShellQuote, SingleQuotesAreClosedEscapedAndReopened) {
  EXPECT_EQ(ceso::shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(ceso::shell_quote("'"), "''\\'''");
  EXPECT_EQ(ceso::shell_quote("''"), "''\\'''\\'''");
  EXPECT_EQ(ceso::shell_quote("a\\'b"), "'a\\'\\''b'");
}

TEST(ShellQuote, ControlCharactersAreRefusedNamingTheArgument) {
  const std::string bad[] = {
      std::string("a\0b", 3), "a\nb",    "a\rb", "tab\there", "\x1b[2J", "del\x7f",
      "c1\xc2\x9b",           "bell\x07"};
  for (const auto& arg : bad) {
    try {
      ceso::shell_command({"vim-cmd", "vmsvc/getallvms", arg});
      ADD_FAILURE() << "accepted " << arg;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Exit::bad_input);
      EXPECT_NE(std::string(e.what()).find("argument 2"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("control character"), std::string::npos) << e.what();
      // The message itself stays one printable line.
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
}

TEST(ShellQuote, BytesThatAreNotUtf8AreRefused) {
  for (std::string arg : {"a\xff", "\xc0\xaf", "\xed\xa0\x80", "cut\xe2\x98", "\x9b"}) {
    try {
      ceso::shell_quote(arg, "the name");
      ADD_FAILURE() << "accepted " << arg;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Exit::bad_input);
      EXPECT_NE(std::string(e.what()).find("the name"), std::string::npos);
      EXPECT_NE(std::string(e.what()).find("not UTF-8"), std::string::npos) << e.what();
    }
  }
}

TEST(ShellQuote, CommandLineJoinsQuotedArgumentsAndRefusesNone) {
  EXPECT_EQ(ceso::shell_command({"vim-cmd", "solo/registervm", "/vmfs/volumes/ds 1/web's/x.vmx"}),
            "'vim-cmd' 'solo/registervm' '/vmfs/volumes/ds 1/web'\\''s/x.vmx'");
  EXPECT_THROW(ceso::shell_command({}), Error);
  try {
    ceso::shell_command({"vim\n"});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the command"), std::string::npos);
  }
}

// ---------------------------------------------------------------- pins and keys

TEST(HostKeyFingerprint, IsOpenSshsFormat) {
  // ssh-keygen -lf of this ed25519 key prints this fingerprint.
  const std::string blob =
      ceso::base64_decode("AAAAC3NzaC1lZDI1NTE5AAAAIEiKY5ga8UqHTluSpGRwBVlZ8KpWuFMY+//b8XehJvRg");
  EXPECT_EQ(ceso::host_key_fingerprint(blob), "SHA256:XdxVDWV9DxxIbl50k2ahdHogegJX89cYWms6kCbdIVQ");
}

// ---------------------------------------------------------------- helpers

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Runs a shell command line of the test's own (ssh-keygen, ssh-add); its
// stdout.
std::string sh(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) throw std::runtime_error("failed: " + command);
  return out;
}

void keygen(const std::string& file, const std::string& args) {
  if (::access(file.c_str(), F_OK) != 0)
    sh("ssh-keygen -q -N '' -C '' " + args + " -f '" + file + "' </dev/null >/dev/null");
}

// "SHA256:…" of a public key file, as ssh-keygen prints it.
std::string fingerprint_of(const std::string& pub) {
  std::string out = sh("ssh-keygen -lf '" + pub + "'");
  size_t a = out.find("SHA256:");
  return out.substr(a, out.find(' ', a) - a);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

pid_t spawn(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

void stop(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
}

std::string user_name() {
  struct passwd* pw = ::getpwuid(::getuid());
  return pw ? pw->pw_name : "root";
}

// A real sshd on 127.0.0.1 with one host key of `host_key_type`, three
// ports: the login shell, /bin/sh forced, BusyBox ash forced.
class Sshd {
 public:
  Sshd(const ceso::test::TempDir& dir, const std::string& host_key_type)
      : dir_(dir / ("sshd-" + host_key_type)) {
    std::filesystem::create_directories(dir_);
    host_key = dir_ + "/host_key";
    const std::string first = host_key_type.substr(0, host_key_type.find('+'));
    keygen(host_key, first == "ecdsa" ? "-t ecdsa -b 256" : "-t " + first);
    std::string more;
    if (host_key_type.find('+') != std::string::npos) {  // "ecdsa+ed25519"
      host_key2 = dir_ + "/host_key2";
      keygen(host_key2, "-t " + host_key_type.substr(host_key_type.find('+') + 1));
      more = "\nHostKey " + host_key2;
    }
    port = free_port();
    sh_port = free_port();
    ash_port = free_port();
    std::string config = "ListenAddress 127.0.0.1:" + std::to_string(port) +
                         "\nListenAddress 127.0.0.1:" + std::to_string(sh_port) +
                         "\nListenAddress 127.0.0.1:" + std::to_string(ash_port) + "\nHostKey " +
                         host_key + more + "\nPidFile " + dir_ + "/pid" + "\nAuthorizedKeysFile " +
                         dir_ + "/authorized_keys" +
                         "\nStrictModes no\nUsePAM no\nPasswordAuthentication no"
                         "\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes"
                         "\nPermitRootLogin prohibit-password\nLogLevel VERBOSE"
                         "\nMatch LocalPort " +
                         std::to_string(sh_port) +
                         "\n  ForceCommand /bin/sh -c \"$SSH_ORIGINAL_COMMAND\""
                         "\nMatch LocalPort " +
                         std::to_string(ash_port) +
                         "\n  ForceCommand /bin/busybox ash -c \"$SSH_ORIGINAL_COMMAND\"\n";
    write_file(dir_ + "/sshd_config", config);
    write_file(dir_ + "/authorized_keys", "");
    // sshd insists on its privilege separation directory (as root).
    std::error_code ec;
    std::filesystem::create_directories("/run/sshd", ec);
    log = dir_ + "/log";
    pid_ = spawn({"/usr/sbin/sshd", "-D", "-f", dir_ + "/sshd_config", "-E", log});
    for (int i = 0; i < 100 && !port_open(port); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~Sshd() { stop(pid_); }
  void authorize(const std::string& pub) {
    std::ofstream(dir_ + "/authorized_keys", std::ios::app) << read_file(pub);
  }
  // How many logins the log shows so far.
  int logins() const {
    std::string text = read_file(log);
    int n = 0;
    for (size_t pos = 0; (pos = text.find("Accepted publickey", pos)) != std::string::npos; ++pos)
      ++n;
    return n;
  }
  std::string host_key, host_key2, log;
  int port = 0, sh_port = 0, ash_port = 0;

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

// One sshd (ECDSA P-256 host key, as ESXi's) and the client's keys, shared
// by the tests of the suite.
class SshdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::access("/usr/sbin/sshd", X_OK) != 0) return;
    dir_ = new ceso::test::TempDir("ceso-sshd");
    keys_ = (*dir_) / "keys";
    std::filesystem::create_directories(keys_);
    keygen(keys_ + "/ed25519", "-t ed25519");
    keygen(keys_ + "/ecdsa", "-t ecdsa -b 256");
    keygen(keys_ + "/rsa", "-t rsa -b 2048");
    keygen(keys_ + "/stranger", "-t ed25519");
    sshd_ = new Sshd(*dir_, "ecdsa");
    for (const char* k : {"ed25519", "ecdsa", "rsa"}) sshd_->authorize(keys_ + "/" + k + ".pub");
  }
  static void TearDownTestSuite() {
    delete sshd_;
    delete dir_;
    sshd_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!sshd_) GTEST_SKIP() << "no /usr/sbin/sshd (openssh-server): scripts/install-deps";
  }

  // Settings for the test sshd, its host key pinned, the ed25519 key.
  static SshSettings settings(int port = 0) {
    SshSettings s;
    s.user = user_name();
    s.host = "127.0.0.1";
    s.port = port ? port : sshd_->port;
    s.identity = keys_ + "/ed25519";
    s.host_key_pin = fingerprint_of(sshd_->host_key + ".pub");
    return s;
  }
  static std::string known_line(const std::string& pub, int port) {
    return "[127.0.0.1]:" + std::to_string(port) + " " + read_file(pub);
  }

  static ceso::test::TempDir* dir_;
  static std::string keys_;
  static Sshd* sshd_;
};

ceso::test::TempDir* SshdTest::dir_ = nullptr;
std::string SshdTest::keys_;
Sshd* SshdTest::sshd_ = nullptr;

// Runs `f`, which must throw Error with `code`; returns the message.
template <class F>
std::string error_of(F f, Exit code) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---------------------------------------------------------------- commands

TEST_F(SshdTest, RunsACommandWithItsOutputAndExitStatus) {
  SshConnection c(settings());
  auto r = c.run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.exit_signal, "");
  r = c.run({"true"});
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(r.out, "");
  r = c.run({"sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(r.exit_signal, "KILL");
  EXPECT_EQ(c.host_key_type(), "ecdsa-sha2-nistp256");
  EXPECT_EQ(c.host_key_fingerprint(), fingerprint_of(sshd_->host_key + ".pub"));
}

TEST_F(SshdTest, FeedsStdin) {
  SshConnection c(settings());
  EXPECT_EQ(c.run({"cat"}, "hello\n").out, "hello\n");
  EXPECT_EQ(c.run({"cat"}).out, "");  // stdin at its end at once: no hang
  // More than the channel window both ways: writing and reading interleave.
  std::string big(5 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4099) big[i] = static_cast<char>('a' + i % 26);
  auto r = c.run({"cat"}, big);
  EXPECT_EQ(r.out.size(), big.size());
  EXPECT_TRUE(r.out == big);
  // A command that does not read its input still finishes.
  EXPECT_EQ(c.run({"true"}, big).exit_status, 0);
}

TEST_F(SshdTest, StreamsInputInChunks) {
  SshConnection c(settings());
  // 40 MiB pulled in chunks: the command sees every byte, in order.
  const uint64_t total = 40ull << 20;
  uint64_t given = 0, calls = 0;
  size_t largest = 0;
  auto input = [&](char* data, size_t size) -> size_t {
    ++calls;
    largest = std::max(largest, size);
    size_t n = static_cast<size_t>(std::min<uint64_t>(size, total - given));
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>('a' + (given + i) % 26);
    given += n;
    return n;
  };
  auto r = c.run_input({"sh", "-c", "cksum; echo err >&2"}, input);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(r.err, "err\n");
  std::string expect;
  {
    std::string all(total, '\0');
    for (uint64_t i = 0; i < total; ++i) all[i] = static_cast<char>('a' + i % 26);
    expect = c.run({"cksum"}, all).out;
  }
  EXPECT_EQ(r.out, expect);
  EXPECT_GT(calls, 100u);          // never the whole input at once
  EXPECT_LE(largest, 256u << 10);  // the chunk size
  // The input fails half-way: its error comes back once the command ended,
  // which saw a short input; the connection still serves the next command.
  given = 0;
  auto failing = [&](char* data, size_t size) -> size_t {
    if (given >= (1u << 20)) throw Error("the backup is damaged", Exit::failure);
    return input(data, size);
  };
  auto msg = error_of(
      [&] {
        c.run_input({"sh", "-c", "wc -c >/tmp/ceso-ssh-input-test"}, failing);
      },
      Exit::failure);
  EXPECT_EQ(msg, "the backup is damaged");
  EXPECT_EQ(c.run({"cat", "/tmp/ceso-ssh-input-test"}).out, "1048576\n");
  c.run({"rm", "-f", "/tmp/ceso-ssh-input-test"});
  // Cancelled (SIGINT): Error(interrupted), the connection still usable.
  given = 0;
  msg =
      error_of([&] { c.run_input({"cat"}, input, [&] { return given > 0; }); }, Exit::interrupted);
  EXPECT_NE(msg.find("interrupted"), std::string::npos);
  // A command that ends before reading all its input is a failure naming
  // its exit status and stderr.
  given = 0;
  msg = error_of(
      [&] {
        c.run_input({"sh", "-c", "head -c 10 >/dev/null; echo full >&2; exit 1"}, input);
      },
      Exit::failure);
  EXPECT_NE(msg.find("before the end (exit status 1): full"), std::string::npos) << msg;
  EXPECT_EQ(c.run({"echo", "after"}).out, "after\n");
}

TEST_F(SshdTest, OneConnectionServesEveryCommand) {
  int before = sshd_->logins();
  SshConnection c(settings());
  std::string first;
  for (int i = 0; i < 20; ++i) {
    // SSH_CLIENT names the client's port: the same TCP connection each time.
    auto r = c.run({"sh", "-c", "echo $SSH_CLIENT"});
    ASSERT_EQ(r.exit_status, 0);
    if (i == 0) first = r.out;
    EXPECT_EQ(r.out, first);
  }
  EXPECT_EQ(c.commands(), 20u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(sshd_->logins() - before, 1);
}

// Every argument reaches the program as it was, through each shell.
TEST_F(SshdTest, QuotingRoundTripsThroughBashShAndBusyboxAsh) {
  const std::vector<std::string> args = {"it's",      "a b",    "  lead and trail  ",
                                         "$HOME",     "`id`",   "$(id)",
                                         "*",         "?",      "[a-z]*",
                                         "~",         "",       "é ☃ 🙂",
                                         "\\",        "\"",     "'",
                                         "''",        "a'b'c",  ";rm -rf /tmp/nothing",
                                         "|",         "&",      "#",
                                         "!",         "%s",     "-n",
                                         "--",        "{a,b}",  "a\\'b",
                                         "\\$HOME\\", "${x:-y}"};
  std::vector<int> ports = {sshd_->port, sshd_->sh_port};
  if (::access("/bin/busybox", X_OK) == 0) ports.push_back(sshd_->ash_port);
  for (int port : ports) {
    SshConnection c(settings(port));
    std::vector<std::string> argv = {"printf", "%s\\n"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = c.run(argv);
    ASSERT_EQ(r.exit_status, 0) << port << ": " << r.err;
    std::string expect;
    for (const auto& a : args) expect += a + "\n";
    EXPECT_EQ(r.out, expect) << "port " << port;
  }
  // Each port runs the shell it should: bash's printf knows %q, dash's
  // echo does not take -e, BusyBox ash's does.
  auto out_of = [&](int port, const std::vector<std::string>& argv) {
    SshConnection c(settings(port));
    return c.run(argv).out;
  };
  EXPECT_EQ(out_of(sshd_->port, {"printf", "%q", "a b"}), "a\\ b");
  EXPECT_EQ(out_of(sshd_->sh_port, {"echo", "-e", "a"}), "-e a\n");
  if (ports.size() == 3) {
    EXPECT_EQ(out_of(sshd_->ash_port, {"echo", "-e", "a"}), "a\n");
    EXPECT_EQ(out_of(sshd_->ash_port, {"printf", "%q", "a b"}), "");
  }
}

TEST_F(SshdTest, RefusedArgumentsAreNeverSent) {
  SshConnection c(settings());
  auto msg = error_of([&] { c.run({"touch", "/tmp/x\n/tmp/y"}); }, Exit::bad_input);
  EXPECT_TRUE(contains(msg, "argument 1")) << msg;
  EXPECT_EQ(c.commands(), 0u);
  EXPECT_EQ(c.run({"true"}).exit_status, 0);  // the connection is still fine
}

TEST_F(SshdTest, StreamsLargeOutput) {
  SshConnection c(settings());
  auto s = c.stream({"sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' x; echo done >&2; exit 4"});
  uint64_t total = 0;
  bool all_x = true;
  char buf[100000];
  size_t n;
  while ((n = s->read(buf, sizeof buf)) > 0) {
    total += n;
    for (size_t i = 0; i < n; ++i) all_x &= buf[i] == 'x';
  }
  EXPECT_EQ(total, 20000000u);
  EXPECT_TRUE(all_x);
  auto r = s->finish();
  EXPECT_EQ(r.exit_status, 4);
  EXPECT_EQ(r.err, "done\n");
  s.reset();
  // Running another command while a stream is open on this thread is an error.
  auto s2 = c.stream({"echo", "hi"});
  EXPECT_THROW(c.run({"true"}), Error);
  EXPECT_EQ(s2->read(buf, sizeof buf), 3u);
  s2->finish();
  s2.reset();
  EXPECT_EQ(c.run({"echo", "after"}).out, "after\n");
}

TEST_F(SshdTest, OutputLargerThanTheCapIsRefused) {
  ceso::SshLimits limits;
  limits.max_output_bytes = 1 << 20;
  SshConnection c(settings(), limits);
  EXPECT_EQ(c.run({"head", "-c", "1000000", "/dev/zero"}).out.size(), 1000000u);
  auto msg = error_of([&] { c.run({"head", "-c", "3000000", "/dev/zero"}); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "larger than 1 MiB")) << msg;
  // stderr counts too.
  SshConnection c2(settings(), limits);
  msg = error_of([&] { c2.run({"sh", "-c", "head -c 3000000 /dev/zero >&2"}); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "CESO_MAX_ANSWER_MIB")) << msg;
  // The connection is given up: later commands say so.
  msg = error_of([&] { c.run({"true"}); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "lost")) << msg;
}

TEST_F(SshdTest, CallAndIdleTimeouts) {
  ceso::SshLimits limits;
  limits.call_timeout_s = 1;
  limits.idle_timeout_s = 0;
  SshConnection c(settings(), limits);
  auto start = std::chrono::steady_clock::now();
  auto msg = error_of([&] { c.run({"sleep", "10"}); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "call timeout")) << msg;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  // A command that keeps talking is not idle, however long it runs: output
  // every 0.2 s against a 2 s idle timeout (a tenfold margin for a loaded
  // machine), 1.2 s in all.
  limits.call_timeout_s = 0;
  limits.idle_timeout_s = 2;
  SshConnection c2(settings(), limits);
  auto r = c2.run({"sh", "-c", "for i in 1 2 3 4 5 6; do echo $i; sleep 0.2; done"});
  EXPECT_EQ(r.out, "1\n2\n3\n4\n5\n6\n");
  msg = error_of([&] { c2.run({"sleep", "10"}); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "idle timeout")) << msg;
  // Streams have the idle timeout too.
  SshConnection c3(settings(), limits);
  auto s = c3.stream({"sleep", "10"});
  char buf[10];
  msg = error_of([&] { s->read(buf, sizeof buf); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "idle timeout")) << msg;
}

TEST_F(SshdTest, UnreachableHost) {
  SshSettings s = settings();
  s.port = free_port();  // nothing listens
  auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "cannot connect")) << msg;
}

// ---------------------------------------------------------------- host keys

TEST_F(SshdTest, UnknownHostKeyIsRefusedWithItsFingerprint) {
  ceso::test::TempDir tmp;
  SshSettings s = settings();
  s.host_key_pin.clear();
  s.known_hosts_files = {tmp / "missing", tmp / "known_hosts"};
  write_file(tmp / "known_hosts", "# nothing yet\n");
  s.record_file = tmp / "known_hosts";
  int before = sshd_->logins();
  auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, fingerprint_of(sshd_->host_key + ".pub"))) << msg;
  EXPECT_TRUE(contains(msg, "not known")) << msg;
  EXPECT_TRUE(contains(msg, "ssh_host_key:")) << msg;
  EXPECT_TRUE(contains(msg, "--accept-new-host-key")) << msg;
  EXPECT_EQ(read_file(tmp / "known_hosts"), "# nothing yet\n");  // nothing recorded
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(sshd_->logins(), before);  // refused before logging in
}

TEST_F(SshdTest, AcceptNewRecordsTheKeyAndTrustsItNextTime) {
  ceso::test::TempDir tmp;
  SshSettings s = settings();
  s.host_key_pin.clear();
  write_file(tmp / "known_hosts", "# kept\nother.example ssh-ed25519 AAAA\n");
  s.known_hosts_files = {tmp / "known_hosts"};
  s.record_file = tmp / "state/ceso/known_hosts";  // created, with its directories
  s.accept_new_host_key = true;
  {
    SshConnection c(s);
    EXPECT_EQ(c.run({"true"}).exit_status, 0);
  }
  std::string recorded = read_file(s.record_file);
  std::istringstream pub(read_file(sshd_->host_key + ".pub"));
  std::string type, key;
  pub >> type >> key;
  EXPECT_EQ(recorded, "[127.0.0.1]:" + std::to_string(sshd_->port) + " " + type + " " + key + "\n");
  EXPECT_EQ(std::filesystem::status(s.record_file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(read_file(tmp / "known_hosts"), "# kept\nother.example ssh-ed25519 AAAA\n");
  // ssh-keygen reads the line we wrote.
  EXPECT_TRUE(contains(sh("ssh-keygen -lf '" + s.record_file + "'"),
                       fingerprint_of(sshd_->host_key + ".pub")));
  // Next time it is known, without accept-new.
  s.accept_new_host_key = false;
  s.known_hosts_files.push_back(s.record_file);
  SshConnection again(s);
  EXPECT_EQ(again.run({"true"}).exit_status, 0);
}

TEST_F(SshdTest, KnownHostKeyMatchesPlainAndHashedLines) {
  ceso::test::TempDir tmp;
  SshSettings s = settings();
  s.host_key_pin.clear();
  s.known_hosts_files = {tmp / "known_hosts"};
  // Lines libssh2 cannot read before ours do not hide it.
  const std::string unreadable =
      "@cert-authority *.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEiKY5ga8UqHTluSpGRwBVlZ8Kp"
      "WuFMY+//b8XehJvRg\n"
      "sk.example sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIA\n"
      "garbage\n";
  write_file(tmp / "known_hosts", unreadable + known_line(sshd_->host_key + ".pub", sshd_->port));
  SshConnection(s).run({"true"});
  // Hashed (ssh-keygen -H, HashKnownHosts yes).
  write_file(tmp / "known_hosts", known_line(sshd_->host_key + ".pub", sshd_->port));
  sh("ssh-keygen -q -H -f '" + tmp / "known_hosts" + "' >/dev/null 2>&1");
  std::string hashed = read_file(tmp / "known_hosts");
  ASSERT_FALSE(contains(hashed, "127.0.0.1"));
  ASSERT_TRUE(contains(hashed, "|1|"));
  write_file(tmp / "known_hosts", unreadable + hashed);
  SshConnection(s).run({"true"});
}

TEST_F(SshdTest, ChangedHostKeyIsRefusedNamingBothFingerprints) {
  ceso::test::TempDir tmp;
  keygen(tmp / "old_ecdsa", "-t ecdsa -b 256");
  keygen(tmp / "old_ed25519", "-t ed25519");
  const std::string now = fingerprint_of(sshd_->host_key + ".pub");
  SshSettings s = settings();
  s.host_key_pin.clear();
  s.accept_new_host_key = true;  // never for a changed key
  s.record_file = tmp / "record";
  s.known_hosts_files = {tmp / "known_hosts"};
  // The same type, another type (not a way around it), hashed, behind an
  // unreadable line.
  for (std::string old : {"old_ecdsa", "old_ed25519"}) {
    for (bool hashed : {false, true}) {
      write_file(tmp / "known_hosts", known_line(tmp / old + ".pub", sshd_->port));
      if (hashed) sh("ssh-keygen -q -H -f '" + tmp / "known_hosts" + "' >/dev/null 2>&1");
      write_file(tmp / "known_hosts", "garbage line\n" + read_file(tmp / "known_hosts"));
      auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
      EXPECT_TRUE(contains(msg, "CHANGED")) << msg;
      EXPECT_TRUE(contains(msg, fingerprint_of(tmp / old + ".pub"))) << msg;
      EXPECT_TRUE(contains(msg, now)) << msg;
      EXPECT_TRUE(contains(msg, "ssh-keygen -R")) << msg;
      EXPECT_FALSE(std::filesystem::exists(tmp / "record"));
    }
  }
  // A second file with the right key: OpenSSH accepts a key any line has.
  write_file(tmp / "good", known_line(sshd_->host_key + ".pub", sshd_->port));
  s.known_hosts_files = {tmp / "known_hosts", tmp / "good"};
  SshConnection(s).run({"true"});
}

// The sftp backup target checks its session with the same function: a
// changed key behind a line libssh2 cannot read is refused even with
// accept-new, and the user's file keeps every line.
TEST_F(SshdTest, CheckOfAnotherSessionAsTheSftpTargetUsesIt) {
  ceso::test::TempDir tmp;
  keygen(tmp / "old", "-t ecdsa -b 256");
  const std::string text = "@cert-authority *.example " + read_file(tmp / "old.pub") +
                           "# a comment\n" + known_line(tmp / "old.pub", sshd_->port);
  write_file(tmp / "known_hosts", text);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(sshd_->port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  libssh2_init(0);
  LIBSSH2_SESSION* session = libssh2_session_init();
  ASSERT_EQ(libssh2_session_handshake(session, fd), 0);
  SshSettings s;
  s.host = "127.0.0.1";
  s.port = sshd_->port;
  s.known_hosts_files = {tmp / "known_hosts"};
  s.record_file = tmp / "known_hosts";
  s.accept_new_host_key = true;
  auto msg =
      error_of([&] { ceso::check_ssh_host_key(session, s, "sftp: ", ""); }, Exit::connection);
  EXPECT_EQ(msg.rfind("sftp: ", 0), 0u) << msg;
  EXPECT_TRUE(contains(msg, "differs")) << msg;
  EXPECT_TRUE(contains(msg, fingerprint_of(tmp / "old.pub"))) << msg;
  EXPECT_EQ(read_file(tmp / "known_hosts"), text);
  // Unknown and accepted: one line appended, the rest kept.
  write_file(tmp / "known_hosts", "# a comment\n");
  ceso::check_ssh_host_key(session, s, "sftp: ", "");
  EXPECT_EQ(read_file(tmp / "known_hosts").rfind("# a comment\n[127.0.0.1]:", 0), 0u);
  libssh2_session_free(session);
  ::close(fd);
}

TEST_F(SshdTest, KnownKeyForPort22IsNotThisPort) {
  ceso::test::TempDir tmp;
  keygen(tmp / "other", "-t ecdsa -b 256");
  SshSettings s = settings();
  s.host_key_pin.clear();
  s.known_hosts_files = {tmp / "known_hosts"};
  // The host's sshd on port 22 has another key: not a changed key here.
  write_file(tmp / "known_hosts", "127.0.0.1 " + read_file(tmp / "other.pub"));
  auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "not known")) << msg;
}

TEST_F(SshdTest, RevokedHostKeyIsRefused) {
  ceso::test::TempDir tmp;
  SshSettings s = settings();
  s.host_key_pin.clear();
  s.known_hosts_files = {tmp / "known_hosts"};
  write_file(tmp / "known_hosts", known_line(sshd_->host_key + ".pub", sshd_->port) +
                                      "@revoked * " + read_file(sshd_->host_key + ".pub"));
  auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "@revoked")) << msg;
}

TEST_F(SshdTest, PinnedHostKey) {
  SshSettings s = settings();
  s.known_hosts_files.clear();
  EXPECT_EQ(SshConnection(s).run({"true"}).exit_status, 0);
  s.host_key_pin = "SHA256:XdxVDWV9DxxIbl50k2ahdHogegJX89cYWms6kCbdIVQ";
  s.accept_new_host_key = true;  // does not override a pin
  int before = sshd_->logins();
  auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "SHA256:XdxVDWV9DxxIbl50k2ahdHogegJX89cYWms6kCbdIVQ")) << msg;
  EXPECT_TRUE(contains(msg, fingerprint_of(sshd_->host_key + ".pub"))) << msg;
  EXPECT_TRUE(contains(msg, "not the pinned")) << msg;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(sshd_->logins(), before);  // refused before logging in
}

TEST_F(SshdTest, Ed25519HostKey) {
  Sshd ed(*dir_, "ed25519");
  ed.authorize(keys_ + "/ed25519.pub");
  SshSettings s = settings(ed.port);
  s.host_key_pin = fingerprint_of(ed.host_key + ".pub");
  SshConnection c(s);
  EXPECT_EQ(c.host_key_type(), "ssh-ed25519");
  EXPECT_EQ(c.run({"echo", "ok"}).out, "ok\n");
}

// A host with two keys offers the one known for it (as OpenSSH asks): not
// a false "changed" when the known one is not the first in OpenSSH's order.
TEST_F(SshdTest, HostWithTwoKeysOffersTheKnownOne) {
  Sshd two(*dir_, "ecdsa+ed25519");
  two.authorize(keys_ + "/ed25519.pub");
  ceso::test::TempDir tmp;
  SshSettings s = settings(two.port);
  s.host_key_pin.clear();
  s.known_hosts_files = {tmp / "known_hosts"};
  write_file(tmp / "known_hosts", known_line(two.host_key + ".pub", two.port));
  EXPECT_EQ(SshConnection(s).host_key_type(), "ecdsa-sha2-nistp256");
  sh("ssh-keygen -q -H -f '" + tmp / "known_hosts" + "' >/dev/null 2>&1");
  EXPECT_EQ(SshConnection(s).host_key_type(), "ecdsa-sha2-nistp256");
  write_file(tmp / "known_hosts", "192.0.2.1," + known_line(two.host_key2 + ".pub", two.port));
  EXPECT_EQ(SshConnection(s).host_key_type(), "ssh-ed25519");
  // Nothing known: OpenSSH's order, ed25519 first.
  write_file(tmp / "known_hosts", "");
  s.accept_new_host_key = true;
  EXPECT_EQ(SshConnection(s).host_key_type(), "ssh-ed25519");
}

// ---------------------------------------------------------------- identities

TEST_F(SshdTest, Ed25519AndEcdsaIdentityFiles) {
  for (const char* k : {"ed25519", "ecdsa"}) {
    SshSettings s = settings();
    s.identity = keys_ + "/" + k;
    EXPECT_EQ(SshConnection(s).run({"echo", k}).out, std::string(k) + "\n");
  }
}

TEST_F(SshdTest, RsaIdentityGetsAClearMessage) {
  ceso::test::TempDir tmp;
  keygen(tmp / "rsa_pem", "-t rsa -b 1024 -m PEM");
  for (std::string key : {keys_ + "/rsa", tmp / "rsa_pem"}) {
    SshSettings s = settings();
    s.identity = key;
    auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
    EXPECT_TRUE(contains(msg, "RSA key")) << msg;
    EXPECT_TRUE(contains(msg, "ssh-rsa (SHA-1)")) << msg;
    EXPECT_TRUE(contains(msg, "ed25519")) << msg;
  }
}

TEST_F(SshdTest, UnusableIdentities) {
  ceso::test::TempDir tmp;
  sh("ssh-keygen -q -t ed25519 -N secret -C '' -f '" + tmp / "locked" + "'");
  SshSettings s = settings();
  s.identity = tmp / "locked";
  auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "passphrase")) << msg;
  EXPECT_TRUE(contains(msg, "agent")) << msg;
  s.identity = tmp / "missing";
  msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "does not exist")) << msg;
  s.identity = keys_ + "/stranger";  // not authorized
  msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "refused")) << msg;
  EXPECT_TRUE(contains(msg, "authorized_keys")) << msg;
}

TEST_F(SshdTest, DefaultIdentityFilesUnderHome) {
  ceso::test::TempDir home;
  std::filesystem::create_directories(home / ".ssh");
  std::filesystem::copy_file(keys_ + "/ecdsa", home / ".ssh/id_ecdsa");
  ceso::test::ScopedEnv h("HOME", home / "");
  ceso::test::ScopedEnv a("SSH_AUTH_SOCK", std::nullopt);
  SshSettings s = settings();
  s.identity.clear();
  EXPECT_EQ(SshConnection(s).run({"echo", "ok"}).out, "ok\n");
  std::filesystem::remove(home / ".ssh/id_ecdsa");
  std::filesystem::copy_file(keys_ + "/rsa", home / ".ssh/id_rsa");  // never tried
  auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "id_ed25519")) << msg;
}

// An ssh-agent of the test's own, holding the given keys.
class Agent {
 public:
  Agent(const ceso::test::TempDir& dir, const std::vector<std::string>& keys)
      : sock_(dir / "agent.sock") {
    pid_ = spawn({"/usr/bin/ssh-agent", "-D", "-a", sock_});
    for (int i = 0; i < 100 && ::access(sock_.c_str(), F_OK) != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (const auto& k : keys) sh("SSH_AUTH_SOCK='" + sock_ + "' ssh-add -q '" + k + "' 2>&1");
  }
  ~Agent() { stop(pid_); }
  const std::string& sock() const { return sock_; }

 private:
  std::string sock_;
  pid_t pid_ = -1;
};

TEST_F(SshdTest, SshAgent) {
  ceso::test::TempDir tmp;
  Agent agent(tmp, {keys_ + "/stranger", keys_ + "/ecdsa"});
  ceso::test::ScopedEnv env("SSH_AUTH_SOCK", agent.sock());
  SshSettings s = settings();
  s.identity = "agent";
  EXPECT_EQ(SshConnection(s).run({"echo", "agent"}).out, "agent\n");
  s.identity.clear();  // the default tries the agent first
  EXPECT_EQ(SshConnection(s).run({"echo", "agent"}).out, "agent\n");
}

TEST_F(SshdTest, SshAgentWithOnlyRsaOrNoAgent) {
  ceso::test::TempDir tmp;
  {
    Agent agent(tmp, {keys_ + "/rsa"});
    ceso::test::ScopedEnv env("SSH_AUTH_SOCK", agent.sock());
    SshSettings s = settings();
    s.identity = "agent";
    auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
    EXPECT_TRUE(contains(msg, "1 RSA/DSA skipped")) << msg;
    EXPECT_TRUE(contains(msg, "ssh-rsa (SHA-1)")) << msg;
  }
  ceso::test::ScopedEnv env("SSH_AUTH_SOCK", std::nullopt);
  SshSettings s = settings();
  s.identity = "agent";
  auto msg = error_of([&] { SshConnection c(s); }, Exit::connection);
  EXPECT_TRUE(contains(msg, "SSH_AUTH_SOCK")) << msg;
}

TEST(PrivateKeyInfo, TellsTheTypeWithoutThePassphrase) {
  ceso::test::TempDir tmp;
  struct Case {
    const char* args;
    const char* type;
    bool encrypted;
  } cases[] = {{"-t ed25519", "ssh-ed25519", false},
               {"-t ecdsa -b 256", "ecdsa-sha2-nistp256", false},
               {"-t ecdsa -b 384", "ecdsa-sha2-nistp384", false},
               {"-t rsa -b 1024", "ssh-rsa", false},
               {"-t rsa -b 1024 -m PEM", "ssh-rsa", false},
               {"-t ecdsa -b 256 -m PEM", "ecdsa", false},
               {"-t rsa -b 1024 -m PKCS8", "ssh-rsa", false},
               {"-t ed25519 -N secret1", "ssh-ed25519", true},
               {"-t rsa -b 1024 -m PEM -N secret1", "ssh-rsa", true}};
  int i = 0;
  for (const auto& c : cases) {
    std::string file = tmp / ("k" + std::to_string(i++));
    std::string args = c.args;
    if (args.find("-N") == std::string::npos) args += " -N ''";
    sh("ssh-keygen -q -C '' " + args + " -f '" + file + "' </dev/null >/dev/null");
    auto info = ceso::private_key_info(read_file(file));
    EXPECT_EQ(info.type, c.type) << c.args;
    EXPECT_EQ(info.encrypted, c.encrypted) << c.args;
  }
  EXPECT_EQ(ceso::private_key_info("not a key").type, "");
  EXPECT_EQ(ceso::private_key_info("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n").type, "");
  EXPECT_EQ(ceso::private_key_info("-----BEGIN OPENSSH PRIVATE KEY-----\n!!\n").type, "");
}

// ---------------------------------------------------------------- interruption

// The interrupt flag is process-wide and stays set: each case in a child.
TEST_F(SshdTest, InterruptCutsACommandOfAReadOnlyRun) {
  auto s = settings();
  EXPECT_EXIT(
      {
        ceso::install_interrupt_handler();
        ceso::ReadOnlyRun read_only;
        SshConnection c(s);
        std::thread([] {
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          ::kill(::getpid(), SIGINT);
        }).detach();
        try {
          c.run({"sleep", "20"});
        } catch (const Error& e) {
          std::_Exit(static_cast<int>(e.code()));
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(130), "");
}

TEST_F(SshdTest, InterruptLetsACommandOfAChangingRunFinish) {
  auto s = settings();
  EXPECT_EXIT(
      {
        ceso::install_interrupt_handler();
        SshConnection c(s);
        std::thread([] {
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          ::kill(::getpid(), SIGINT);
        }).detach();
        auto r = c.run({"sh", "-c", "sleep 1; echo finished"});
        std::_Exit(r.out == "finished\n" && ceso::interrupted() ? 42 : 1);
      },
      ::testing::ExitedWithCode(42), "");
}

}  // namespace
