#include "cli/fanout.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/error.hpp"
#include "base/log.hpp"
#include "cli/endpoint.hpp"

namespace ceso {

std::optional<std::vector<std::string>> fan_out_names(
    const std::vector<std::string>& given,
    const std::function<std::vector<std::string>()>& config_names) {
  if (given.empty()) return std::nullopt;
  for (const auto& g : given)
    if (g.empty()) usage_error("-H: empty host name");
  bool all = std::find(given.begin(), given.end(), "all") != given.end();
  if (given.size() == 1 && !all) return std::nullopt;
  if (all) {
    if (given.size() > 1)
      usage_error("-H all names every host of the config file: give no other -H");
    std::vector<std::string> names = config_names();
    if (names.empty())
      usage_error("-H all: the config file names no hosts (" + quote(config_path()) + ")");
    return names;
  }
  for (size_t i = 0; i < given.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (given[i] == given[j]) usage_error("-H " + quote(given[i]) + " is given twice");
  return given;
}

std::optional<std::vector<Endpoint>> fan_out_endpoints(const Args& args, const Environment& env) {
  auto names = fan_out_names(args.all("host"), [&] { return config_host_names(env); });
  if (!names) return std::nullopt;
  if (args.has("url")) usage_error("--url and several -H: give one or the other");
  std::vector<Endpoint> eps;
  for (const auto& n : *names) {
    Endpoint ep = resolve_endpoint(HostSelection{std::nullopt, n}, env);
    for (const auto& e : eps)
      if (e.id == ep.id)
        usage_error("-H " + quote(e.config_name) + " and -H " + quote(n) +
                    " are the same endpoint " + ep.id);
    eps.push_back(std::move(ep));
  }
  return eps;
}

Exit fan_out(const std::vector<Endpoint>& endpoints, Output& out,
             const std::function<std::vector<ordered_json>(const Endpoint&)>& list) {
  struct Result {
    bool done = false;
    std::vector<ordered_json> records;
    std::optional<Error> error;
  };
  std::vector<Result> results(endpoints.size());
  std::mutex mutex;
  std::condition_variable cv;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (;;) {
      size_t i = next++;
      if (i >= endpoints.size()) return;
      Result r;
      try {
        r.records = list(endpoints[i]);
      } catch (const Error& e) {
        r.error = e;
      } catch (const std::exception& e) {
        r.error = Error(e.what());
      }
      r.done = true;
      std::lock_guard lock(mutex);
      results[i] = std::move(r);
      cv.notify_all();
    }
  };
  // Joined on every way out (an error writing the records included).
  struct Threads {
    std::vector<std::thread> all;
    ~Threads() {
      for (auto& t : all)
        if (t.joinable()) t.join();
    }
  } threads;
  size_t n = std::min(endpoints.size(), kFanOutThreads);
  for (size_t t = 0; t < n; ++t) threads.all.emplace_back(worker);

  Outcome outcome;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    Result r;
    {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return results[i].done; });
      r = std::move(results[i]);
    }
    const Endpoint& ep = endpoints[i];
    // Ctrl-C cuts every host's call: one "interrupted", not a warning per host.
    if (r.error && r.error->code() == Exit::interrupted) throw *r.error;
    if (r.error) {
      std::string who = "host " + quote(ep.config_name) + " (" + ep.id + ")";
      outcome.failed(
          Error(who + ": " + r.error->what() + "; its records are missing", r.error->code()));
      continue;
    }
    out.emit_all(r.records);
    outcome.succeeded();
  }
  return outcome.exit_code();
}

}  // namespace ceso
