#include "cli/tool.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "base/metrics.hpp"
#include "cli/endpoint.hpp"
#include "config/config.hpp"
#include "safety/policy.hpp"

namespace ceso {

namespace {

// Display width of UTF-8 text: one column per code point (good enough for
// names; East Asian wide characters would need wcwidth).
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::vector<std::string> split_fields(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string f = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!f.empty()) out.push_back(f);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string header_of(const std::string& column) {
  std::string h = column;
  for (auto& c : h)
    c = c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return h;
}

// Keep only the -o fields (dotted paths kept as nested objects).
ordered_json select_fields(const ordered_json& record, const std::vector<std::string>& fields) {
  ordered_json out = ordered_json::object();
  for (const auto& f : fields) {
    const ordered_json* v = field_at(record, f);
    if (!v) continue;
    ordered_json* dst = &out;
    std::string_view path = f;
    for (;;) {
      size_t dot = path.find('.');
      std::string key(path.substr(0, dot));
      if (dot == std::string_view::npos) {
        (*dst)[key] = *v;
        break;
      }
      dst = &(*dst)[key];
      path = path.substr(dot + 1);
    }
  }
  return out;
}

}  // namespace

Output::Output(const Args& args, std::vector<std::string> columns, LineFormatter line)
    : columns_(std::move(columns)), line_(std::move(line)) {
  records_ = args.has("json") || !isatty(STDOUT_FILENO);
  if (auto o = args.maybe("output")) {
    fields_ = split_fields(*o);
    if (fields_.empty()) usage_error("--output: no field names given");
    columns_ = fields_;
    line_ = nullptr;  // explicit columns: a table even for actions
  }
}

namespace {

// Writes whole record lines; a reader that went away (`| head -1`) ends the
// tool quietly, like cat.
void write_lines(std::string_view text) {
  if (!write_stdout(text)) {
    std::fflush(stderr);
    _exit(0);
  }
}

}  // namespace

void Output::emit(const ordered_json& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (records_) {
    write_lines(record_line(fields_.empty() ? record : select_fields(record, fields_)));
    return;
  }
  if (line_) {
    std::string text = line_(record);
    std::fputs((text + "\n").c_str(), stdout);
    std::fflush(stdout);
    return;
  }
  std::vector<std::string> row;
  row.reserve(columns_.size());
  for (const auto& c : columns_) row.push_back(cell_text(field_at(record, c)));
  rows_.push_back(std::move(row));
}

void Output::emit_all(const std::vector<ordered_json>& records) {
  if (!records_) {
    for (const auto& r : records) emit(r);
    return;
  }
  constexpr size_t kWrite = 64 << 10;
  std::lock_guard<std::mutex> lock(mutex_);
  std::string text;
  for (const auto& r : records) {
    text += record_line(fields_.empty() ? r : select_fields(r, fields_));
    if (text.size() >= kWrite) {
      write_lines(text);
      text.clear();
    }
  }
  if (!text.empty()) write_lines(text);
}

void Output::finish() {
  if (records_ || line_ || rows_.empty()) return;
  std::vector<size_t> width(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) width[i] = display_width(header_of(columns_[i]));
  for (const auto& r : rows_)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], display_width(r[i]));
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      line += cells[i];
      if (i + 1 < cells.size()) line.append(width[i] - display_width(cells[i]) + 2, ' ');
    }
    line += '\n';
    std::fputs(line.c_str(), stdout);
  };
  std::vector<std::string> headers;
  for (const auto& c : columns_) headers.push_back(header_of(c));
  print_row(headers);
  for (const auto& r : rows_) print_row(r);
  std::fflush(stdout);
  rows_.clear();
}

void Outcome::succeeded() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++ok_;
}

size_t Outcome::failures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failed_;
}

void Outcome::failed(const Error& e, std::string_view what) {
  std::lock_guard<std::mutex> lock(mutex_);
  warn(what.empty() ? std::string(e.what()) : std::string(what) + ": " + e.what());
  if (failed_ == 0)
    first_code_ = e.code();
  else if (e.code() != first_code_)
    mixed_codes_ = true;
  ++failed_;
}

Exit Outcome::exit_code() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failed_ == 0) return Exit::ok;
  if (ok_ > 0) return Exit::partial;
  if (first_code_ == Exit::interrupted) return Exit::interrupted;
  return mixed_codes_ ? Exit::failure : first_code_;
}

namespace {

// How read_targets hands targets on in batches (for_each_vm): `flush` acts
// on the `pending()` targets dispatched so far. It is called when `max` are
// pending, when no more input arrived within `window_ms` of the batch's first
// target, before an upstream plan record is passed on (so the output keeps
// the input's order), and at the end.
struct Batching {
  size_t max = 1;
  int window_ms = 0;
  std::function<size_t()> pending;
  std::function<void()> flush;
};

// Reads the targets (operands, or records on stdin) and hands each to
// `dispatch`; input errors are counted in `outcome`.
void read_targets(const Args& args, Outcome& outcome, const std::vector<std::string>& accept_types,
                  const std::function<void(Target)>& dispatch, const Batching* batching = nullptr) {
  auto flush = [&] {
    if (batching && batching->pending() > 0) batching->flush();
  };
  if (!args.operands.empty()) {
    for (size_t i = 0; i < args.operands.size() && !interrupted(); ++i) {
      dispatch(
          Target{args.operands[i], ordered_json::object(), "argument " + std::to_string(i + 1)});
      if (batching && batching->pending() >= batching->max) flush();
    }
    flush();
    return;
  }
  if (isatty(STDIN_FILENO)) usage_error("no VM named and no records on standard input");
  NdjsonReader reader(stdin, "<stdin>");
  std::set<std::string> planned;  // VMs of upstream plan records already dispatched
  bool noted = false;
  using Clock = std::chrono::steady_clock;
  Clock::time_point batch_start;  // when the first pending target arrived
  auto dispatch_one = [&](Target t) {
    if (batching && batching->pending() == 0) batch_start = Clock::now();
    dispatch(std::move(t));
    if (batching && batching->pending() >= batching->max) flush();
  };
  while (!interrupted()) {
    if (batching && batching->pending() > 0) {
      // Take what has arrived; act on the batch before waiting for more.
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          batch_start + std::chrono::milliseconds(batching->window_ms) - Clock::now());
      if (!reader.wait_ready(static_cast<int>(std::max<int64_t>(left.count(), 0)))) {
        flush();
        continue;
      }
      if (interrupted()) break;
    }
    std::optional<InputRecord> rec;
    try {
      rec = reader.next();
    } catch (const Error& e) {
      // A bad line is that record's failure; a failed read ends the run
      // with the reader's error (exit 1), never as if the input had ended.
      if (reader.failed()) throw;
      outcome.failed(e);
      continue;
    }
    if (!rec) break;
    const auto& v = rec->value;
    auto type = v.find("type");
    if (type == v.end() || !type->is_string()) {
      outcome.failed(
          Error("error (at " + rec->origin + "): record has no \"type\"", Exit::bad_input));
      continue;
    }
    // An upstream --dry-run stage's plans: passed on, so the end of a dry-run
    // pipeline shows every stage's plan. A dry run plans its own step for the
    // plan's VM (once per VM); a real run does nothing for it, since the
    // step before was never made.
    if (*type == "plan" &&
        std::find(accept_types.begin(), accept_types.end(), "vm") != accept_types.end()) {
      flush();
      write_record(v);
      std::string vm = v.value("vm", "");
      if (vm.empty() || !v.contains("vm")) continue;  // a plan about the host itself
      if (!args.has("dry-run")) {
        if (!noted)
          note("plan records from a --dry-run stage passed on; nothing done for their VMs");
        noted = true;
        continue;
      }
      std::string id = v["vm_id"].is_string() ? v["vm_id"].get<std::string>() : "";
      std::string ep = v["endpoint"].is_string() ? v["endpoint"].get<std::string>() : "";
      if (!planned.insert(ep + "\n" + (id.empty() ? vm : id)).second) continue;
      ordered_json vm_rec = {{"type", "vm"}, {"endpoint", ep}, {"id", id}, {"name", vm}};
      if (id.empty()) vm_rec.erase("id");
      if (ep.empty()) vm_rec.erase("endpoint");
      dispatch_one(Target{vm, std::move(vm_rec), rec->origin});
      continue;
    }
    if (std::find(accept_types.begin(), accept_types.end(), type->get<std::string>()) ==
        accept_types.end()) {
      outcome.failed(Error("error (at " + rec->origin + "): cannot act on a record of type " +
                               quote(type->get<std::string>()),
                           Exit::bad_input));
      continue;
    }
    auto name = v.find("name");
    if (name == v.end() || !name->is_string() || name->get<std::string>().empty()) {
      outcome.failed(Error("error (at " + rec->origin + "): field \"name\" missing or not a string",
                           Exit::bad_input));
      continue;
    }
    dispatch_one(Target{name->get<std::string>(), v, rec->origin});
  }
  flush();
}

void run_target(Outcome& outcome, const Target& t, const std::function<void()>& fn) {
  try {
    throw_if_interrupted();
    fn();
  } catch (const Error& e) {
    outcome.failed(e, quote(t.name));
  }
}

}  // namespace

Exit for_each_target(const Args& args, Outcome& outcome,
                     const std::function<void(const Target&)>& fn,
                     std::vector<std::string> accept_types) {
  return for_each_target_parallel(
      args, outcome, 1, [&](const Target& t, size_t) { fn(t); }, std::move(accept_types));
}

namespace {

// Up to `jobs` workers doing `work` on what `produce` pushes: a bounded
// queue, so producing stays at most `jobs` items ahead. If produce throws
// (a read error), the items pushed before it are still done, as they would
// be one by one, then the error is raised.
template <class Item>
void run_pool(size_t jobs, const std::function<void(const std::function<void(Item)>&)>& produce,
              const std::function<void(Item&, size_t)>& work) {
  std::mutex m;
  std::condition_variable cv;
  std::deque<Item> queue;
  bool done = false;
  std::vector<std::thread> workers;
  for (size_t w = 0; w < jobs; ++w) {
    workers.emplace_back([&, w] {
      for (;;) {
        std::optional<Item> item;
        {
          std::unique_lock<std::mutex> lock(m);
          cv.wait(lock, [&] { return done || !queue.empty(); });
          if (queue.empty()) return;
          item.emplace(std::move(queue.front()));
          queue.pop_front();
        }
        cv.notify_all();
        work(*item, w);
      }
    });
  }
  auto finish = [&] {
    {
      std::lock_guard<std::mutex> lock(m);
      done = true;
    }
    cv.notify_all();
    for (auto& th : workers) th.join();
  };
  try {
    produce([&](Item item) {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return queue.size() < jobs; });
      queue.push_back(std::move(item));
      cv.notify_all();
    });
  } catch (...) {
    finish();
    throw;
  }
  finish();
}

// An interrupted run exits 130 even when some targets were done: the
// others were not (the interrupted one has said so already).
Exit end_of_targets(Outcome& outcome) {
  if (interrupted()) {
    if (outcome.failures() == 0) throw Error("interrupted", Exit::interrupted);
    return Exit::interrupted;
  }
  return outcome.exit_code();
}

}  // namespace

Exit for_each_target_parallel(const Args& args, Outcome& outcome, size_t jobs,
                              const std::function<void(const Target&, size_t worker)>& fn,
                              std::vector<std::string> accept_types) {
  if (jobs <= 1) {
    read_targets(args, outcome, accept_types,
                 [&](Target t) { run_target(outcome, t, [&] { fn(t, 0); }); });
  } else {
    run_pool<Target>(
        jobs,
        [&](const std::function<void(Target)>& push) {
          read_targets(args, outcome, accept_types, push);
        },
        [&](Target& t, size_t w) { run_target(outcome, t, [&] { fn(t, w); }); });
  }
  return end_of_targets(outcome);
}

Exit for_each_vm(const Args& args, Outcome& outcome, const VmLookup& lookup,
                 const std::function<void(const Target&, FoundVm&, size_t worker)>& fn) {
  size_t jobs = std::max<size_t>(lookup.jobs, 1);
  // One locator (one client per endpoint) per worker, and one for the
  // lookups when they run beside the workers: a Client is not shared
  // between threads.
  std::vector<std::unique_ptr<VmLocator>> locators;
  for (size_t w = 0; w < jobs; ++w)
    locators.push_back(std::make_unique<VmLocator>(endpoint_resolver(args)));
  std::unique_ptr<VmLocator> own_finder;
  if (jobs > 1) own_finder = std::make_unique<VmLocator>(endpoint_resolver(args));
  VmLocator& finder = jobs > 1 ? *own_finder : *locators.front();
  // The finders of a flush's further batches, each on its own thread (made
  // when first needed: a pipeline of at most kLookupBatch records never has
  // one).
  std::vector<std::unique_ptr<VmLocator>> more_finders;

  struct Item {
    Target target;
    LookupResult result;
    VmLocator* found_by = nullptr;
  };
  auto act = [&](Item& item, size_t w) {
    const Target& t = item.target;
    run_target(outcome, t, [&] {
      LookupResult& r = item.result;
      if (r.error) std::rethrow_exception(r.error);
      FoundVm& vm = *r.found;
      VmLocator& mine = *locators[w];
      if (std::chrono::steady_clock::now() - vm.checked > kLookupMaxAge) {
        // Looked up a while ago (the targets before it took long): its
        // identity is checked again, alone, right before the tool acts.
        auto again = mine.locate_batch({&t}, lookup.paths, lookup.filters);
        if (again.front().error) std::rethrow_exception(again.front().error);
        vm = std::move(*again.front().found);
      } else if (&mine != item.found_by) {
        vm.vm.client = &mine.client_for(t);
      }
      fn(t, vm, w);
    });
  };
  std::vector<Target> batch;
  // The pending targets in batches of kLookupBatch: the first found on this
  // thread, the others at the same time on threads of their own (one
  // connection each), so a burst of records waits for one round trip, not
  // one per batch. Each batch is handed on, in input order, as soon as it
  // and the ones before it are found: the tool acts on the first while the
  // others are still in flight.
  auto look_up = [&](const std::function<void(Item)>& hand_on) {
    std::vector<Target> targets = std::move(batch);
    batch.clear();
    if (interrupted()) return;
    size_t parts = (targets.size() + kLookupBatch - 1) / kLookupBatch;
    auto find = [&](VmLocator& by, size_t part) {
      std::vector<const Target*> wanted;
      for (size_t i = part * kLookupBatch; i < std::min(targets.size(), (part + 1) * kLookupBatch);
           ++i)
        wanted.push_back(&targets[i]);
      return by.locate_batch(wanted, lookup.paths, lookup.filters);
    };
    while (more_finders.size() + 1 < parts)
      more_finders.push_back(std::make_unique<VmLocator>(endpoint_resolver(args)));
    std::vector<std::future<std::vector<LookupResult>>> later;
    for (size_t part = 1; part < parts; ++part)
      later.push_back(std::async(std::launch::async,
                                 [&, part] { return find(*more_finders[part - 1], part); }));
    // The futures are waited for before `targets` goes, even when this
    // thread's batch throws (std::async's future blocks in its destructor).
    for (size_t part = 0; part < parts; ++part) {
      VmLocator* by = part == 0 ? &finder : more_finders[part - 1].get();
      std::vector<LookupResult> found = part == 0 ? find(finder, 0) : later[part - 1].get();
      for (size_t i = 0; i < found.size() && !interrupted(); ++i)
        hand_on({std::move(targets[part * kLookupBatch + i]), std::move(found[i]), by});
    }
  };
  auto collect = [&](Target t) { batch.push_back(std::move(t)); };
  // Reads and hands on in batches; when reading fails, the targets read
  // before the failure are still done, then the error is raised.
  auto read_in_batches = [&](const std::function<void(Item)>& hand_on) {
    Batching b{kLookupBatch * kLookupsInFlight, kLookupWindowMs, [&] { return batch.size(); },
               [&] { look_up(hand_on); }};
    try {
      read_targets(args, outcome, lookup.accept_types, collect, &b);
    } catch (...) {
      if (!batch.empty()) look_up(hand_on);
      throw;
    }
  };
  if (jobs == 1)
    read_in_batches([&](Item item) { act(item, 0); });
  else
    run_pool<Item>(jobs, read_in_batches, act);
  return end_of_targets(outcome);
}

Exit unaudited_epilogue(Exit code) {
  size_t lost = unaudited_changes();
  if (lost == 0) return code;
  warn(std::to_string(lost) + (lost == 1 ? " change was" : " changes were") +
       " made but not recorded in the audit log (see above)");
  // Success and partial success would hide it; other failures already say
  // something went wrong and keep their own code (130, 5, 6, …).
  return code == Exit::ok || code == Exit::partial ? Exit::failure : code;
}

Gate tool_gate(bool dry_run, Gate::PlanSink plan) {
  return Gate(
      std::string(tool_name()), dry_run, [](const std::string& m) { warn(m); }, std::move(plan));
}

std::string_view exit_name(Exit code) {
  switch (code) {
    case Exit::ok:
      return "ok";
    case Exit::failure:
      return "failure";
    case Exit::usage:
      return "usage";
    case Exit::bad_input:
      return "bad_input";
    case Exit::partial:
      return "partial";
    case Exit::policy:
      return "policy";
    case Exit::connection:
      return "connection";
    case Exit::interrupted:
      return "interrupted";
  }
  return "failure";
}

namespace {

// The end of a run that got past its --help/--version: its run metrics, and
// the file when a metrics directory is set (docs/metrics.md). A problem with
// metrics is said on stderr and never changes the exit status.
int finish_run(std::string_view verb, Exit code, std::chrono::steady_clock::time_point start) {
  try {
    std::string_view actor = "human";
    try {
      actor = actor_of(policy_mode());
    } catch (const Error&) {
    }
    // A run refused as a whole (allow_hosts, an unsafe password file, …)
    // counts as one refusal unless the gate counted its own.
    if (code == Exit::policy) {
      bool counted = false;
      for (const auto& [key, value] : metrics::snapshot())
        if (key.name == "ceso_policy_refusals_total" && value > 0) counted = true;
      if (!counted) metrics::record_refusal(actor);
    }
    metrics::record_run(
        verb, exit_name(code),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    MetricsSettings settings;
    try {
      settings = metrics_settings();
    } catch (const Error& e) {
      // A malformed config file is reported by the tools that read it; a
      // bad CESO_METRICS_* variable is ours to report.
      if (std::getenv("CESO_METRICS_DIR") || std::getenv("CESO_METRICS_VM_LABELS"))
        warn(std::string("metrics not written: ") + e.what());
      return static_cast<int>(code);
    }
    if (settings.dir.empty()) return static_cast<int>(code);
    std::string warning;
    metrics::write_file(settings.dir, metrics::snapshot(), {.vm_labels = settings.vm_labels},
                        &warning);
    if (!warning.empty()) warn(warning);
  } catch (const Error& e) {
    warn(std::string("metrics not written: ") + e.what());
  } catch (const std::exception& e) {
    warn(std::string("metrics not written: ") + e.what());
  }
  return static_cast<int>(code);
}

}  // namespace

int run_tool(const ToolSpec& spec, int argc, char** argv,
             const std::function<Exit(const Args&)>& run) {
  const auto start = std::chrono::steady_clock::now();
  set_tool_name(std::string(spec.name));
  // A closed pipe is an EPIPE we handle, not a signal that kills us.
  signal(SIGPIPE, SIG_IGN);
  install_interrupt_handler();
  std::string verb;  // for the metrics, once parsed
  try {
    Args args = parse_args(spec, argc - 1, argv + 1);
    verb = args.verb.empty() ? std::string(spec.default_verb) : args.verb;
    if (args.has("help")) {
      std::fputs(help_text(spec, args.verb).c_str(), stdout);
      return 0;
    }
    if (args.has("version")) {
      std::printf("%s %s\n", std::string(tool_name()).c_str(), std::string(version()).c_str());
      return 0;
    }
    if (args.has("dump-options")) {
      std::fputs(dump_options(spec).c_str(), stdout);
      return 0;
    }
    set_quiet(args.has("quiet"));
    if (args.has("promotion")) {
      if (args.get("promotion").empty()) usage_error("--promotion: the file name is empty");
      set_promotion_option(args.get("promotion"));
    }
    Exit code = run(args);
    std::fflush(stdout);
    return finish_run(verb, unaudited_epilogue(code), start);
  } catch (const Error& e) {
    std::fflush(stdout);
    warn(e.what());
    if (e.code() == Exit::usage)
      std::fprintf(stderr, "Try '%s --help' for more information.\n",
                   std::string(tool_name()).c_str());
    return finish_run(verb, unaudited_epilogue(e.code()), start);
  } catch (const std::bad_alloc&) {
    warn("out of memory");
    return static_cast<int>(Exit::failure);
  } catch (const std::exception& e) {
    warn(std::string("internal error: ") + e.what());
    return finish_run(verb, Exit::failure, start);
  }
}

}  // namespace ceso
