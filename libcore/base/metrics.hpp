// Prometheus metrics of a tool run, for node_exporter's textfile collector
// (docs/metrics.md).
//
// Every layer records what it did into one process-wide registry through the
// record_* functions below (thread-safe, cheap, never throwing); the frame
// (cli/tool.cpp, run_tool) writes the registry once at the end of the run
// when a metrics directory is configured (CESO_METRICS_DIR or the config
// file's `metrics: dir:`). Without one, recording costs a map update and
// nothing is written.
//
// The file: DIR/ceso.prom, the only file ceso writes there, so every family
// lives in one file (node_exporter mangles a family split across files). All
// ceso tools, concurrent ones too (a pipeline, parallel runs), accumulate into
// it: under an exclusive flock(2) on DIR/.ceso.prom.lock a writer reads the
// file, adds its run (counters and histograms are summed, timestamps keep the
// latest), writes DIR/.ceso.prom.tmp.PID and renames it over ceso.prom — so
// counters only grow and a scrape never sees half a file.
//
// Labels stay bounded: tool, verb, vSphere method, result, actor, kind. A VM
// name is a label only when the operator opts in (CESO_METRICS_VM_LABELS=1 or
// `metrics: vm_labels: true`); otherwise the `vm` label is dropped at write
// time and the series are aggregated. No ids, no timestamps as labels.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ceso::metrics {

// ---- recording (any layer, any thread) ----

// One SOAP round trip (vsphere/client): the method, bytes sent and received.
void record_soap_call(std::string_view method, uint64_t bytes_sent, uint64_t bytes_received);

// One change through the policy gate (safety/policy): the vSphere method,
// "ok" | "error" | "refused", who ran it ("agent" in restricted mode, else
// "human"), and how long the action took (not observed for refusals).
void record_change(std::string_view operation, std::string_view result, std::string_view actor,
                   double seconds);

// A refusal by the policy (restricted mode, allow_hosts, unsafe files …),
// by actor ("agent" | "human").
void record_refusal(std::string_view actor);

// A change made under a signed promotion (restricted mode): the gate calls
// this once per use, after the promotion let the change through, whether the
// change then succeeded or failed (both take a use). Counted as
// ceso_promotions_used_total{tool}.
void record_promotion_used();

// One VM's backup (backup/backup): ok or not, bytes read from the host and
// stored at the target, how long it took, and when it finished (Unix time).
void record_backup(std::string_view vm, bool ok, uint64_t bytes_raw, uint64_t bytes_stored,
                   double seconds, int64_t finished_unix);

// One backup verified: "ok" | "failed" (a mismatch) | "error" (not readable),
// and how long it took (operation "verify").
void record_verify(std::string_view result, double seconds);

// The run as a whole (run_tool): the verb ("" for tools without verbs), the
// exit status's name, the duration.
void record_run(std::string_view verb, std::string_view result, double seconds);

// ---- the samples and the file ----

// One sample line: a metric name and its labels (sorted by name) → value.
struct SampleKey {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  bool operator<(const SampleKey& o) const {
    return name != o.name ? name < o.name : labels < o.labels;
  }
  bool operator==(const SampleKey& o) const = default;
};
using Samples = std::map<SampleKey, double>;

enum class Type { counter, gauge, histogram };
struct Family {
  std::string_view name;
  Type type;
  std::string_view help;
};
// Every family ceso writes, sorted by name.
const std::vector<Family>& families();

// The upper bounds (seconds) of every duration histogram's buckets, without +Inf.
const std::vector<double>& duration_buckets();

// What this process recorded so far (with `tool` labels filled in), as samples.
Samples snapshot();
// Forget everything recorded (tests).
void reset();

// Options of the write.
struct WriteOptions {
  bool vm_labels = false;  // keep `vm` labels (else drop them and aggregate)
  // How long to wait for another writer's lock before giving up (Error).
  std::chrono::milliseconds lock_timeout{10000};
};

// `run` added to `stored`: counter and histogram samples summed, gauges
// (timestamps) the maximum. A stored histogram series whose buckets are not
// duration_buckets(), or any sample of a family ceso does not write, is left
// out (and named in `dropped`). Without vm_labels, series with a `vm` label
// are aggregated (run) or left out (stored).
Samples merge(const Samples& stored, const Samples& run, const WriteOptions& options,
              std::vector<std::string>* dropped = nullptr);

// The text exposition format 0.0.4 of `samples`: HELP and TYPE per family,
// families in name order, histogram buckets in order of le, no timestamps.
std::string render(const Samples& samples);

// Parses what render() writes. Throws Error(bad_input) naming the line and
// what is wrong with it.
Samples parse(std::string_view text);

// Label value escaping of the exposition format (\\, \", \n).
std::string escape_label(std::string_view value);

// Adds `run` into DIR/ceso.prom under the lock, atomically (see the top of
// this file). Throws Error naming the file when it cannot; a ceso.prom that
// cannot be parsed is moved aside to ceso.prom.corrupt (and said so in
// `warning`) rather than overwritten unseen.
void write_file(const std::string& dir, const Samples& run, const WriteOptions& options,
                std::string* warning = nullptr);

inline constexpr std::string_view kFileName = "ceso.prom";

}  // namespace ceso::metrics
