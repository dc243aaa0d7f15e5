// The YAML config file (config.hpp, ~/.config/ceso/config): host entries,
// default, backup target. The input is written to a private config file
// (0600, in a directory of its own) and read through the public API with an
// environment that names only that directory.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "cli/options.hpp"
#include "config/config.hpp"
#include "fuzz.hpp"

namespace {

const std::string& home() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/ceso-fuzz-config-XXXXXX";
    const char* d = mkdtemp(tmpl);
    if (!d) std::abort();
    std::string h = d;
    ::mkdir((h + "/ceso").c_str(), 0700);
    return h;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ceso;
  const std::string path = home() + "/ceso/config";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  ::chmod(path.c_str(), 0600);
  Environment env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "XDG_CONFIG_HOME" || name == "HOME") return home();
    return std::nullopt;
  };
  std::vector<std::string> names;
  ceso_fuzz::expect_ok_or_error([&] { names = config_host_names(env); });
  ceso_fuzz::expect_ok_or_error([&] { (void)config_backup_target(env); });
  ceso_fuzz::expect_ok_or_error([&] { (void)resolve_endpoint_if_given(HostSelection{}, env); });
  for (size_t i = 0; i < names.size() && i < 4; ++i) {
    ceso_fuzz::expect_ok_or_error([&] {
      HostSelection a;
      a.name = names[i];
      Endpoint ep = resolve_endpoint(a, env);
      CESO_FUZZ_CHECK(!ep.url.empty() && !ep.host.empty() && !ep.user.empty(),
                      "a resolved endpoint has a URL, host and user");
      CESO_FUZZ_CHECK(ep.port > 0 && ep.port < 65536, "a resolved endpoint has a valid port");
      // A record naming the same endpoint finds the same entry.
      (void)endpoint_for_record(ep.id, std::nullopt, env);
    });
  }
  return 0;
}
