#include "base/metrics.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <set>

#include "base/error.hpp"
#include "base/file.hpp"
#include "base/log.hpp"

namespace ceso::metrics {

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

const std::vector<Family> kFamilies = {
    {"ceso_backup_bytes_total", Type::counter,
     "Bytes of VM files backed up: kind=raw as read from the host, kind=stored as written to "
     "the target (compressed)."},
    {"ceso_backup_last_success_timestamp_seconds", Type::gauge,
     "Unix time of the last successful backup (per VM with vm_labels, else of any VM)."},
    {"ceso_backup_verifications_total", Type::counter,
     "Backups verified, by result (ok, failed: a mismatch, error: not readable)."},
    {"ceso_backups_total", Type::counter, "VM backups attempted, by result (ok, error)."},
    {"ceso_changes_total", Type::counter,
     "Changes through the policy gate by actor (agent: restricted mode, human) and result (ok, "
     "error, refused)."},
    {"ceso_operation_duration_seconds", Type::histogram,
     "Duration of operations: changes (by vSphere method), VM backups, verifications."},
    {"ceso_operations_total", Type::counter, "Operations by tool, operation and result."},
    {"ceso_policy_refusals_total", Type::counter,
     "Runs or changes refused by the policy, by actor (agent: restricted mode, human)."},
    {"ceso_promotions_used_total", Type::counter,
     "Changes made in restricted mode under a signed promotion."},
    {"ceso_run_duration_seconds", Type::histogram, "Duration of tool runs, start to exit."},
    {"ceso_runs_total", Type::counter, "Tool runs by verb and exit status."},
    {"ceso_soap_bytes_total", Type::counter,
     "Bytes of SOAP requests (direction=sent) and answers (direction=received)."},
    {"ceso_soap_round_trips_total", Type::counter, "SOAP calls to vSphere hosts, by method."},
};

const std::vector<double> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,    2.5,
                                      5,     10,   30,    60,   120, 300,  600, 1800, 3600};

std::mutex g_mutex;
Samples g_samples;

std::string number_text(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

const std::vector<std::string>& bucket_texts() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> t;
    for (double b : kBuckets) t.push_back(number_text(b));
    t.push_back("+Inf");
    return t;
  }();
  return texts;
}

Labels labels_of(std::initializer_list<std::pair<std::string_view, std::string_view>> list,
                 bool with_tool = true) {
  Labels out;
  if (with_tool && !tool_name().empty()) out.emplace_back("tool", std::string(tool_name()));
  for (const auto& [k, v] : list)
    if (!v.empty()) out.emplace_back(std::string(k), std::string(v));
  std::sort(out.begin(), out.end());
  return out;
}

// Labels in name order: one spelling per series, whatever order they were
// written in (as node_exporter shows them).
void insert_sorted(Labels& labels, std::string name, std::string value) {
  auto at = std::lower_bound(labels.begin(), labels.end(), name,
                             [](const auto& l, const std::string& n) { return l.first < n; });
  labels.emplace(at, std::move(name), std::move(value));
}

// Callers hold g_mutex.
void add(std::string_view name, const Labels& labels, double v) {
  g_samples[SampleKey{std::string(name), labels}] += v;
}

void set_max(std::string_view name, const Labels& labels, double v) {
  auto [it, fresh] = g_samples.try_emplace(SampleKey{std::string(name), labels}, v);
  if (!fresh) it->second = std::max(it->second, v);
}

void observe(std::string_view name, const Labels& labels, double v) {
  if (!(v >= 0)) v = 0;  // NaN or a clock step: count it in the first bucket
  const auto& texts = bucket_texts();
  for (size_t i = 0; i < texts.size(); ++i) {
    Labels l = labels;
    insert_sorted(l, "le", texts[i]);
    double& slot = g_samples[SampleKey{std::string(name) + "_bucket", std::move(l)}];
    if (i == kBuckets.size() || v <= kBuckets[i]) slot += 1;
  }
  add(std::string(name) + "_sum", labels, v);
  add(std::string(name) + "_count", labels, 1);
}

// The family a sample name belongs to (histograms: its _bucket/_sum/_count).
const Family* family_of(std::string_view name) {
  for (const auto& f : kFamilies) {
    if (name == f.name) return f.type == Type::histogram ? nullptr : &f;
    if (f.type != Type::histogram || name.substr(0, f.name.size()) != f.name) continue;
    std::string_view rest = name.substr(f.name.size());
    if (rest == "_bucket" || rest == "_sum" || rest == "_count") return &f;
  }
  return nullptr;
}

bool has_label(const Labels& labels, std::string_view key) {
  return std::any_of(labels.begin(), labels.end(), [&](const auto& l) { return l.first == key; });
}

Labels without(const Labels& labels, std::string_view key) {
  Labels out;
  for (const auto& l : labels)
    if (l.first != key) out.push_back(l);
  return out;
}

std::string series_text(const SampleKey& key) {
  std::string s = key.name;
  if (!key.labels.empty()) {
    s += '{';
    for (size_t i = 0; i < key.labels.size(); ++i) {
      if (i) s += ',';
      s += key.labels[i].first + "=\"" + escape_label(key.labels[i].second) + '"';
    }
    s += '}';
  }
  return s;
}

}  // namespace

// ---- recording ----

void record_soap_call(std::string_view method, uint64_t bytes_sent, uint64_t bytes_received) {
  std::lock_guard<std::mutex> lock(g_mutex);
  add("ceso_soap_round_trips_total", labels_of({{"method", method}}), 1);
  add("ceso_soap_bytes_total", labels_of({{"direction", "sent"}}), static_cast<double>(bytes_sent));
  add("ceso_soap_bytes_total", labels_of({{"direction", "received"}}),
      static_cast<double>(bytes_received));
}

void record_change(std::string_view operation, std::string_view result, std::string_view actor,
                   double seconds) {
  std::lock_guard<std::mutex> lock(g_mutex);
  add("ceso_changes_total", labels_of({{"actor", actor}, {"result", result}}), 1);
  add("ceso_operations_total", labels_of({{"operation", operation}, {"result", result}}), 1);
  if (result != "refused")
    observe("ceso_operation_duration_seconds", labels_of({{"operation", operation}}), seconds);
}

void record_refusal(std::string_view actor) {
  std::lock_guard<std::mutex> lock(g_mutex);
  add("ceso_policy_refusals_total", labels_of({{"actor", actor}}), 1);
}

void record_promotion_used() {
  std::lock_guard<std::mutex> lock(g_mutex);
  add("ceso_promotions_used_total", labels_of({}), 1);
}

void record_backup(std::string_view vm, bool ok, uint64_t bytes_raw, uint64_t bytes_stored,
                   double seconds, int64_t finished_unix) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string_view result = ok ? "ok" : "error";
  add("ceso_backups_total", labels_of({{"result", result}, {"vm", vm}}, false), 1);
  add("ceso_operations_total", labels_of({{"operation", "backup"}, {"result", result}}), 1);
  observe("ceso_operation_duration_seconds", labels_of({{"operation", "backup"}}), seconds);
  if (!ok) return;
  add("ceso_backup_bytes_total", labels_of({{"kind", "raw"}, {"vm", vm}}, false),
      static_cast<double>(bytes_raw));
  add("ceso_backup_bytes_total", labels_of({{"kind", "stored"}, {"vm", vm}}, false),
      static_cast<double>(bytes_stored));
  set_max("ceso_backup_last_success_timestamp_seconds", labels_of({{"vm", vm}}, false),
          static_cast<double>(finished_unix));
}

void record_verify(std::string_view result, double seconds) {
  std::lock_guard<std::mutex> lock(g_mutex);
  add("ceso_backup_verifications_total", labels_of({{"result", result}}, false), 1);
  add("ceso_operations_total", labels_of({{"operation", "verify"}, {"result", result}}), 1);
  observe("ceso_operation_duration_seconds", labels_of({{"operation", "verify"}}), seconds);
}

void record_run(std::string_view verb, std::string_view result, double seconds) {
  std::lock_guard<std::mutex> lock(g_mutex);
  add("ceso_runs_total", labels_of({{"verb", verb}, {"result", result}}), 1);
  observe("ceso_run_duration_seconds", labels_of({{"verb", verb}}), seconds);
}

// ---- samples ----

const std::vector<Family>& families() { return kFamilies; }
const std::vector<double>& duration_buckets() { return kBuckets; }

Samples snapshot() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_samples;
}

void reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_samples.clear();
}

std::string escape_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

Samples merge(const Samples& stored, const Samples& run, const WriteOptions& options,
              std::vector<std::string>* dropped) {
  auto drop = [&](const std::string& what) {
    if (dropped) dropped->push_back(what);
  };
  // Stored histogram series must have exactly our buckets, be cumulative and
  // agree with their _count; anything else would corrupt the sum.
  std::set<SampleKey> bad_series;  // histogram family name + labels without le
  {
    std::map<SampleKey, std::vector<std::pair<std::string, double>>> buckets;
    for (const auto& [k, v] : stored) {
      const Family* f = family_of(k.name);
      if (!f || f->type != Type::histogram) continue;
      if (k.name.size() > 7 && k.name.compare(k.name.size() - 7, 7, "_bucket") == 0) {
        auto le = std::find_if(k.labels.begin(), k.labels.end(),
                               [](const auto& l) { return l.first == "le"; });
        SampleKey series{std::string(f->name), without(k.labels, "le")};
        if (le == k.labels.end())
          bad_series.insert(series);
        else
          buckets[series].emplace_back(le->second, v);
      }
    }
    for (const auto& [k, v] : stored) {
      const Family* f = family_of(k.name);
      if (f && f->type == Type::histogram) buckets.try_emplace({std::string(f->name), k.labels});
    }
    const auto& texts = bucket_texts();
    for (auto& [series, list] : buckets) {
      bool ok = list.size() == texts.size();
      double prev = 0;
      for (size_t i = 0; ok && i < texts.size(); ++i) {
        auto it = std::find_if(list.begin(), list.end(),
                               [&](const auto& b) { return b.first == texts[i]; });
        ok = it != list.end() && it->second >= prev;
        if (ok) prev = it->second;
      }
      auto count = stored.find(SampleKey{series.name + "_count", series.labels});
      auto sum = stored.find(SampleKey{series.name + "_sum", series.labels});
      ok = ok && count != stored.end() && count->second == prev && sum != stored.end();
      if (!ok) bad_series.insert(series);
    }
  }
  Samples out;
  for (const auto& [k, v] : stored) {
    const Family* f = family_of(k.name);
    if (!f) {
      drop(series_text(k) + ": not a family ceso writes");
      continue;
    }
    if (!options.vm_labels && has_label(k.labels, "vm")) {
      drop(series_text(k) + ": VM names as labels are off");
      continue;
    }
    if (f->type == Type::histogram &&
        bad_series.count(SampleKey{std::string(f->name), without(k.labels, "le")})) {
      drop(series_text(k) + ": not a well-formed histogram with ceso's buckets");
      continue;
    }
    if (!std::isfinite(v) || (f->type != Type::gauge && v < 0)) {
      drop(series_text(k) + ": bad value");
      continue;
    }
    out[k] = v;
  }
  for (const auto& [k0, v] : run) {
    const Family* f = family_of(k0.name);
    if (!f) continue;
    SampleKey k = k0;
    if (!options.vm_labels) k.labels = without(k.labels, "vm");
    auto [it, fresh] = out.try_emplace(k, v);
    if (fresh) continue;
    if (f->type == Type::gauge)
      it->second = std::max(it->second, v);
    else
      it->second += v;
  }
  return out;
}

std::string render(const Samples& samples) {
  // Group the samples by family, then (histograms) by series.
  std::map<std::string_view, std::vector<const std::pair<const SampleKey, double>*>> by_family;
  for (const auto& s : samples)
    if (const Family* f = family_of(s.first.name)) by_family[f->name].push_back(&s);
  std::string out;
  for (const auto& f : kFamilies) {
    auto it = by_family.find(f.name);
    if (it == by_family.end()) continue;
    out += "# HELP " + std::string(f.name) + " " + std::string(f.help) + "\n";
    out += "# TYPE " + std::string(f.name) + " " +
           (f.type == Type::counter ? "counter"
            : f.type == Type::gauge ? "gauge"
                                    : "histogram") +
           "\n";
    if (f.type != Type::histogram) {
      for (const auto* s : it->second)
        out += series_text(s->first) + " " + number_text(s->second) + "\n";
      continue;
    }
    // Series (labels without le) in order; per series: buckets by le, _sum, _count.
    std::map<Labels, std::vector<std::pair<double, const std::pair<const SampleKey, double>*>>>
        buckets;
    std::map<Labels, std::pair<double, double>> sum_count;
    for (const auto* s : it->second) {
      const std::string& n = s->first.name;
      if (n.size() > 7 && n.compare(n.size() - 7, 7, "_bucket") == 0) {
        double le = INFINITY;
        for (const auto& l : s->first.labels)
          if (l.first == "le" && l.second != "+Inf") le = std::strtod(l.second.c_str(), nullptr);
        buckets[without(s->first.labels, "le")].emplace_back(le, s);
      } else if (n.size() > 4 && n.compare(n.size() - 4, 4, "_sum") == 0) {
        sum_count[s->first.labels].first = s->second;
      } else {
        sum_count[s->first.labels].second = s->second;
      }
    }
    for (auto& [labels, list] : buckets) {
      std::sort(list.begin(), list.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& b : list)
        out += series_text(b.second->first) + " " + number_text(b.second->second) + "\n";
      auto sc = sum_count[labels];
      out +=
          series_text({std::string(f.name) + "_sum", labels}) + " " + number_text(sc.first) + "\n";
      out += series_text({std::string(f.name) + "_count", labels}) + " " + number_text(sc.second) +
             "\n";
    }
  }
  return out;
}

namespace {

bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

}  // namespace

Samples parse(std::string_view text) {
  Samples out;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto fail = [&](const std::string& why) {
      return Error("line " + std::to_string(line_no) + ": " + why, Exit::bad_input);
    };
    if (line.empty() || line[0] == '#') continue;
    size_t i = 0;
    SampleKey key;
    while (i < line.size() && name_char(line[i], i == 0)) ++i;
    if (i == 0) throw fail("expected a metric name");
    key.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        size_t start = i;
        while (i < line.size() && name_char(line[i], i == start)) ++i;
        if (i == start) throw fail("expected a label name");
        std::string name(line.substr(start, i - start));
        if (line.substr(i, 2) != "=\"") throw fail("expected =\" after label " + name);
        i += 2;
        std::string value;
        while (true) {
          if (i >= line.size()) throw fail("unterminated value of label " + name);
          char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= line.size()) throw fail("unterminated value of label " + name);
            char e = line[i++];
            if (e == 'n')
              value += '\n';
            else if (e == '\\' || e == '"')
              value += e;
            else
              throw fail("bad escape in the value of label " + name);
          } else {
            value += c;
          }
        }
        if (has_label(key.labels, name)) throw fail("label " + name + " given twice");
        insert_sorted(key.labels, std::move(name), std::move(value));
        if (i < line.size() && line[i] == ',') ++i;
      }
    }
    if (i >= line.size() || line[i] != ' ') throw fail("expected a space before the value");
    std::string_view v = line.substr(i + 1);
    double value = 0;
    if (v == "+Inf") {
      value = INFINITY;
    } else {
      auto r = std::from_chars(v.data(), v.data() + v.size(), value);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size())
        throw fail("bad value (or a timestamp, which ceso never writes)");
    }
    if (!out.emplace(std::move(key), value).second) throw fail("sample given twice");
  }
  return out;
}

void write_file(const std::string& dir, const Samples& run, const WriteOptions& options,
                std::string* warning) {
  const std::string path = dir + "/" + std::string(kFileName);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    throw Error("metrics directory " + quote(dir) + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) throw Error("metrics directory " + quote(dir) + ": not a directory");
  Fd lock(
      ::open((dir + "/.ceso.prom.lock").c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!lock) throw Error("metrics: cannot open the lock in " + quote(dir) + ": " + strerror(errno));
  // A writer holds the lock for milliseconds; one stuck far longer (a hung
  // file system, a stopped process) must not hang every tool at its exit.
  const auto deadline = std::chrono::steady_clock::now() + options.lock_timeout;
  while (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR)
      throw Error("metrics: cannot lock " + quote(dir) + ": " + strerror(errno));
    if (std::chrono::steady_clock::now() >= deadline)
      throw Error("metrics: " + quote(dir + "/.ceso.prom.lock") + " held by another process for " +
                  std::to_string(options.lock_timeout.count()) +
                  " ms; this run's metrics are lost");
    ::usleep(5000);
  }
  Samples stored;
  if (auto text =
          read_file(path, {.what = "metrics file", .max_bytes = 64u << 20, .missing_ok = true})) {
    try {
      stored = parse(*text);
    } catch (const Error& e) {
      std::string aside = path + ".corrupt";
      if (::rename(path.c_str(), aside.c_str()) != 0)
        throw Error("metrics file " + quote(path) + ": " + e.what() +
                    "; cannot move it aside: " + strerror(errno));
      if (warning)
        *warning = "metrics file " + quote(path) + ": " + e.what() + "; moved to " + quote(aside) +
                   ", counting again from zero";
    }
  }
  std::vector<std::string> dropped;
  std::string text = render(merge(stored, run, options, &dropped));
  if (!dropped.empty() && warning && warning->empty())
    *warning = "metrics file " + quote(path) + ": left out " + std::to_string(dropped.size()) +
               " sample(s), the first: " + dropped.front();
  const std::string tmp = dir + "/.ceso.prom.tmp." + std::to_string(::getpid());
  // A leftover of a killed run with our pid goes first; never through a link.
  ::unlink(tmp.c_str());
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!out) throw Error("metrics: cannot create " + quote(tmp) + ": " + strerror(errno));
  // node_exporter runs as another user: the file must be readable by it,
  // whatever the umask.
  int err = ::fchmod(out.get(), 0644) != 0 ? errno : 0;
  if (!err) err = write_all(out.get(), text);
  // No fsync: it costs ~10 ms a run, and after a crash an empty or cut file
  // only means counting again from zero (a counter reset Prometheus
  // handles; a cut file is moved aside as unparsable).
  if (!err && out.close() != 0) err = errno;
  if (!err && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    throw Error("metrics: cannot write " + quote(path) + ": " + strerror(err));
  }
}

}  // namespace ceso::metrics
